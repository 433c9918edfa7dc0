"""The L2 sensitivity bound of conditional randomized rounding (KLS), in one place.

The encoder enforces it and the accountant assumes it, so both import this function.
"""

from __future__ import annotations

import math


def l2_sensitivity(clip: float, gamma: float, padded: int, beta: float) -> float:
    """Delta2 in original units: min{c + g sqrt(d'), sqrt(c^2 + g^2 d'/4 +
    sqrt(2 ln(1/beta)) g (c + g sqrt(d')/2))}; only the first term when beta = 0."""
    root = math.sqrt(padded)
    plain = clip + gamma * root
    if beta == 0:
        return plain
    conditional = math.sqrt(
        clip * clip
        + gamma * gamma * padded / 4.0
        + math.sqrt(2.0 * math.log(1.0 / beta)) * gamma * (clip + gamma * root / 2.0)
    )
    return min(plain, conditional)


def erfcinv(p: float) -> float:
    """Inverse complementary error function for p in (0, 1], by bisection on math.erfc
    (monotone, so 200 halvings reach float resolution; no scipy in dp/)."""
    lo, hi = 0.0, 30.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if math.erfc(mid) > p:
            lo = mid
        else:
            hi = mid
    return 0.5 * (lo + hi)


def wrap_std_devs(wrap_prob: float) -> float:
    """k_s = sqrt(2) erfcinv(p): std-devs of one aggregate coordinate that must fit."""
    return math.sqrt(2.0) * erfcinv(wrap_prob)
