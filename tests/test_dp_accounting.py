"""Accountant (KLS three-term RDP bound, Zhu-Wang subsampling) and the privacy ledger."""

from __future__ import annotations

import json
import math

import dp_accounting
import numpy as np
import pytest

from dp import (
    ORDERS,
    DpParameterError,
    PrivacyBudgetExceeded,
    PrivacyLedger,
    RoundRecord,
    calibrate_sigma,
    epsilon_for,
    gaussian_baseline_epsilon,
    l2_sensitivity,
)
from dp.errors import DpError

DELTA = 1e-5


def rec(**kw) -> RoundRecord:
    base = dict(contributors=50, sigma=0.05, gamma=1e-3, clip=1.0, padded_dim=1 << 16)
    base.update(kw)
    return RoundRecord(**base)


def eps(*records: RoundRecord) -> float:
    return epsilon_for(list(records), DELTA)[0]


def test_monotonicity_properties() -> None:
    assert eps(rec(sigma=0.1)) < eps(rec(sigma=0.05)) < eps(rec(sigma=0.02))
    assert eps(rec(), rec()) > eps(rec())
    assert eps(rec(sampling_rate=0.1)) < eps(rec(sampling_rate=0.5)) < eps(rec())
    assert eps(rec(contributors=10)) > eps(rec(contributors=50))


def test_single_contributor_is_one_discrete_gaussian() -> None:
    r = rec(contributors=1, sigma=0.01)
    assert r.tau() == 0.0
    d2 = l2_sensitivity(r.clip, r.gamma, r.padded_dim, r.beta) / r.gamma
    expected = np.array(ORDERS) * d2**2 / (2 * (r.sigma / r.gamma) ** 2)
    assert np.allclose(r.rdp(), expected, rtol=1e-12)


def test_large_sigma_matches_gaussian_with_enforced_sensitivity() -> None:
    # tau ~ 0 for sigma/gamma = 50, so RDP = alpha a2^2/2: a Gaussian with noise
    # multiplier sqrt(n) sigma / Delta2 (Delta2, not c, and d' not d).
    r = rec()
    assert r.tau() < 1e-300
    z = math.sqrt(r.contributors) * r.sigma / l2_sensitivity(1.0, 1e-3, 1 << 16, r.beta)
    acc = dp_accounting.rdp.RdpAccountant(orders=list(ORDERS))
    acc.compose(dp_accounting.GaussianDpEvent(z))
    assert eps(r) == pytest.approx(acc.get_epsilon(DELTA), rel=1e-9)


def test_tau_term_hand_computed_and_exceeds_continuous_baseline() -> None:
    # small sigma/gamma = 0.6 with n = 3: tau by hand, RDP at alpha = 2 by hand.
    r = RoundRecord(contributors=3, sigma=0.6, gamma=1.0, clip=8.0, padded_dim=4, beta=0.0)
    s = 0.6
    tau = 10 * (math.exp(-2 * math.pi**2 * s * s / 2) + math.exp(-2 * math.pi**2 * s * s * 2 / 3))
    assert r.tau() == pytest.approx(tau, rel=1e-12)
    d2 = 8.0 + 2.0  # beta = 0: c + gamma sqrt(d')
    d1 = d2 * min(2.0, d2)
    a2, a1 = d2 / (math.sqrt(3) * s), d1 / (math.sqrt(3) * s)
    by_hand = min(2 * a2**2 / 2 + tau * 4, (a2**2 + 2 * a1 * tau + tau**2 * 4), (a2 + tau * 2) ** 2)
    assert r.rdp()[0] == pytest.approx(by_hand, rel=1e-12)
    assert eps(r) > gaussian_baseline_epsilon([r], DELTA)


def test_subsampling_bounds() -> None:
    full = rec().rdp()
    sub = rec(sampling_rate=0.01).rdp()
    assert np.all(sub <= full)
    # Theorem 5 is general, so it can never beat the tight Gaussian-specific computation.
    z = math.sqrt(50) * 0.05 / l2_sensitivity(1.0, 1e-3, 1 << 16, math.exp(-0.5))
    tight = dp_accounting.rdp.rdp_privacy_accountant._compute_rdp_poisson_subsampled_gaussian(
        0.01, z, ORDERS
    )
    assert np.all(sub >= np.asarray(tight) * (1 - 1e-9))
    # with a moderate noise multiplier (z ~ 2) subsampling at 1% must help a lot
    assert eps(rec(sigma=0.3, sampling_rate=0.01)) < 0.3 * eps(rec(sigma=0.3))


def test_composition_of_different_rounds_adds_curves() -> None:
    a, b = rec(), rec(contributors=20, sigma=0.08, padded_dim=1 << 10)
    assert np.allclose(
        dp_accounting.rdp.compute_epsilon(ORDERS, a.rdp() + b.rdp(), DELTA)[0], eps(a, b)
    )


def test_calibrate_is_smallest_sigma() -> None:
    def make(s: float) -> list[RoundRecord]:
        return [rec(sigma=s)] * 10

    s = calibrate_sigma(2.0, DELTA, make, sigma_lo=0.5e-3)
    assert epsilon_for(make(s), DELTA)[0] <= 2.0
    assert epsilon_for(make(s * (1 - 1e-5)), DELTA)[0] > 2.0


def test_record_validation() -> None:
    with pytest.raises(DpParameterError, match="padded_dim"):
        rec(padded_dim=1000)
    with pytest.raises(DpParameterError, match="sampling_rate"):
        rec(sampling_rate=0.0)
    with pytest.raises(DpParameterError, match="delta"):
        epsilon_for([rec()], 1.0)


def test_ledger_persist_reload_and_refuse(tmp_path) -> None:
    path = tmp_path / "ledger.jsonl"
    r = rec(sigma=0.2)
    one, two, three = eps(r), eps(r, r), eps(r, r, r)
    cap = (two + three) / 2
    ledger = PrivacyLedger(path, delta=DELTA, epsilon_cap=cap)
    assert ledger.charge(r) == pytest.approx(one)
    ledger.charge(r)
    before = path.read_bytes()
    with pytest.raises(PrivacyBudgetExceeded, match="cap"):
        ledger.charge(r)  # a third round would pass the cap
    assert path.read_bytes() == before and len(ledger.records) == 2
    again = PrivacyLedger(path, delta=DELTA, epsilon_cap=cap)
    assert again.records == (r, r)
    assert again.epsilon() == ledger.epsilon() == epsilon_for([r, r], DELTA)
    assert json.loads(before.splitlines()[0])["record"]["sigma"] == 0.2
    path.write_text(path.read_text() + "{not json\n")
    with pytest.raises(DpError, match="line 3"):
        PrivacyLedger(path, delta=DELTA, epsilon_cap=10.0)
