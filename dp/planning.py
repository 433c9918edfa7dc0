"""Choosing a round's DDG parameters for a privacy target.

gamma depends on sigma (TFF rule) and epsilon on both, so the plan searches the
central noise multiplier z (sigma = z c / sqrt(n), the local share of a central
z c) by bisection, recomputing gamma for every candidate, and returns the
smallest z whose T-round epsilon meets the target. The final candidate is always
re-priced, so the returned parameters meet the target whatever the shape of the
curve between the probes.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

from dp.accounting import RoundRecord, epsilon_for
from dp.codec import DEFAULT_BETA, DEFAULT_WRAP_PROB, DdgParams, gamma_from_bits
from dp.errors import DpParameterError, DpParameterWarning


@dataclass(frozen=True)
class DdgPlan:
    params: DdgParams
    noise_multiplier: float
    epsilon: float  # over all planned rounds, at `delta`, for `accounted_contributors`
    delta: float
    rounds: int
    accounted_contributors: int

    def record(self, contributors: int, sampling_rate: float = 1.0) -> RoundRecord:
        """The accountant's record of one round with `contributors` noise shares."""
        p = self.params
        return RoundRecord(
            contributors=contributors,
            sigma=p.sigma,
            gamma=p.gamma,
            clip=p.clip,
            padded_dim=p.padded_dim,
            beta=p.beta,
            sampling_rate=sampling_rate,
        )


def ddg_params_for(
    noise_multiplier: float,
    *,
    clients: int,
    bits: int,
    clip: float,
    dim: int,
    beta: float = DEFAULT_BETA,
    wrap_prob: float = DEFAULT_WRAP_PROB,
) -> DdgParams:
    """DdgParams for a central noise multiplier z: sigma = z c / sqrt(n), gamma by TFF's rule."""
    sigma = noise_multiplier * clip / math.sqrt(clients)
    gamma = gamma_from_bits(bits, clients, dim, clip, sigma, wrap_prob)
    return DdgParams(
        clip=clip, bits=bits, gamma=gamma, sigma=sigma, clients=clients, dim=dim,
        beta=beta, wrap_prob=wrap_prob,
    )  # fmt: skip


def plan_ddg(
    *,
    epsilon: float,
    delta: float,
    rounds: int,
    clients: int,
    accounted_contributors: int,
    bits: int,
    clip: float,
    dim: int,
    beta: float = DEFAULT_BETA,
    wrap_prob: float = DEFAULT_WRAP_PROB,
    sampling_rate: float = 1.0,
    rel_tol: float = 1e-4,
) -> DdgPlan:
    """Smallest-noise DdgParams meeting `epsilon` at `delta` over `rounds` rounds.

    clients: noise shares expected in the sum (sizes gamma and the wrap check);
    accounted_contributors: the guaranteed minimum the privacy claim rests on
    (e.g. the threshold minus assumed colluders), at most `clients`.
    """
    if not (isinstance(rounds, int) and rounds >= 1):
        raise DpParameterError("rounds must be an integer >= 1")
    if not (isinstance(clients, int) and clients >= 1):
        raise DpParameterError("clients must be an integer >= 1")
    if not (isinstance(accounted_contributors, int) and 1 <= accounted_contributors <= clients):
        raise DpParameterError(f"accounted_contributors must be in 1..clients={clients}")
    if not (math.isfinite(epsilon) and epsilon > 0):
        raise DpParameterError("epsilon must be a finite number > 0")

    def attempt(z: float) -> tuple[float, DdgParams | None]:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DpParameterWarning)
                params = ddg_params_for(
                    z,
                    clients=clients,
                    bits=bits,
                    clip=clip,
                    dim=dim,
                    beta=beta,
                    wrap_prob=wrap_prob,
                )
        except DpParameterError:
            return math.inf, None
        rec = DdgPlan(params, z, 0.0, delta, rounds, accounted_contributors).record(
            accounted_contributors, sampling_rate
        )
        return epsilon_for([rec] * rounds, delta)[0], params

    hi = 1.0
    while attempt(hi)[0] > epsilon:
        hi *= 2.0
        if hi > 1e6:
            raise DpParameterError(
                f"epsilon={epsilon} is not reachable with bits={bits}, clients={clients}, "
                f"dim={dim}: increase bits, epsilon or the number of contributors"
            )
    lo = hi / 2.0 if hi > 1.0 else 0.0
    while hi - lo > rel_tol * hi:
        mid = (lo + hi) / 2.0
        if attempt(mid)[0] <= epsilon:
            hi = mid
        else:
            lo = mid
    eps, params = attempt(hi)
    assert params is not None and eps <= epsilon
    return DdgPlan(params, hi, eps, delta, rounds, accounted_contributors)
