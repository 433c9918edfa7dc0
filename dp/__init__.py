"""blindsum.dp: the distributed discrete Gaussian mechanism and its accounting.

numpy + standard library + dp_accounting (+ pycryptodome for the AES-CTR source).
Never imports secagg or node.
"""

from dp.accounting import (
    ORDERS,
    RoundRecord,
    calibrate_sigma,
    epsilon_for,
    gaussian_baseline_epsilon,
)
from dp.codec import DdgParams, decode, encode, gamma_from_bits
from dp.csprng import CsprngSource
from dp.errors import DpError, DpParameterError, DpParameterWarning, PrivacyBudgetExceeded
from dp.ledger import PrivacyLedger
from dp.rotation import padded_dim, rotate, unrotate
from dp.sampler import sample_discrete_gaussian
from dp.sensitivity import l2_sensitivity

__all__ = [
    "ORDERS",
    "CsprngSource",
    "DdgParams",
    "DpError",
    "DpParameterError",
    "DpParameterWarning",
    "PrivacyBudgetExceeded",
    "PrivacyLedger",
    "RoundRecord",
    "calibrate_sigma",
    "decode",
    "encode",
    "epsilon_for",
    "gamma_from_bits",
    "gaussian_baseline_epsilon",
    "l2_sensitivity",
    "padded_dim",
    "rotate",
    "sample_discrete_gaussian",
    "unrotate",
]
