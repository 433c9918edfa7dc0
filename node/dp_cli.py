"""`blindsum dp ...`: epsilon, calibration and parameter choice, for nodes and auditors."""

from __future__ import annotations

import argparse
import json
import math
import sys
import warnings

from dp import (
    DdgParams,
    DpParameterError,
    RoundRecord,
    calibrate_sigma,
    epsilon_for,
    gamma_from_bits,
    gaussian_baseline_epsilon,
    padded_dim,
)
from dp.codec import DEFAULT_BETA, DEFAULT_WRAP_PROB, MAX_BITS
from node.cli_args import float_in, int_in, positive

_delta = float_in(0.0, 1.0, True, True)
_beta = float_in(0.0, 1.0, False, True)
_rate = float_in(0.0, 1.0, True, False)
_prob = float_in(0.0, 1.0, True, True)


def _add_round_flags(p: argparse.ArgumentParser, with_sigma: bool) -> None:
    p.add_argument("--clients", type=int_in(1), required=True, help="noise shares in the sum")
    if with_sigma:
        p.add_argument(
            "--sigma",
            type=positive,
            required=True,
            help="per-participant std-dev (original units)",
        )
    p.add_argument("--gamma", type=positive, required=True, help="rounding granularity")
    p.add_argument("--clip", type=positive, required=True, help="L2 clip norm")
    p.add_argument("--dim", type=int_in(1), required=True, help="raw dimension (padded to 2^k)")
    p.add_argument("--beta", type=_beta, default=DEFAULT_BETA, help="in [0, 1); default e^-1/2")
    p.add_argument("--q", type=_rate, default=1.0, help="Poisson sampling rate in (0, 1]")
    p.add_argument("--rounds", type=int_in(1), default=1, help="identical rounds (>= 1)")
    p.add_argument("--delta", type=_delta, required=True, help="in (0, 1)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register `dp` and its sub-commands on the dispatcher's subparsers."""
    dp_parser = subparsers.add_parser("dp", help="differential-privacy parameters and accounting")
    sub = dp_parser.add_subparsers(dest="dp_command", required=True)

    p = sub.add_parser("epsilon", help="epsilon of T identical DDG rounds")
    _add_round_flags(p, with_sigma=True)
    p.set_defaults(func=_cmd_epsilon)

    p = sub.add_parser("calibrate", help="smallest sigma meeting a target epsilon")
    _add_round_flags(p, with_sigma=False)
    p.add_argument("--epsilon", type=positive, required=True, help="target epsilon (> 0)")
    p.set_defaults(func=_cmd_calibrate)

    p = sub.add_parser("params", help="gamma from bits (TFF rule), local sigma and epsilon")
    p.add_argument("--bits", type=int_in(1, MAX_BITS), required=True)
    p.add_argument("--clients", type=int_in(1), required=True)
    p.add_argument("--dim", type=int_in(1), required=True)
    p.add_argument("--clip", type=positive, required=True)
    p.add_argument("--noise-multiplier", type=positive, required=True, help="central z (> 0)")
    p.add_argument("--wrap-prob", type=_prob, default=DEFAULT_WRAP_PROB, help="in (0, 1)")
    p.add_argument("--beta", type=_beta, default=DEFAULT_BETA, help="in [0, 1)")
    p.add_argument("--delta", type=_delta, default=1e-5, help="in (0, 1); default 1e-5")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_cmd_params)


# -- commands ------------------------------------------------------------------------------
def _fail(message: str) -> int:
    print(f"blindsum dp: error: {message}", file=sys.stderr)
    return 2


def _records(args: argparse.Namespace, sigma: float) -> list[RoundRecord]:
    rec = RoundRecord(
        contributors=args.clients,
        sigma=sigma,
        gamma=args.gamma,
        clip=args.clip,
        padded_dim=padded_dim(args.dim),
        beta=args.beta,
        sampling_rate=args.q,
    )
    return [rec] * args.rounds


def _report(args: argparse.Namespace, sigma: float, title: str) -> dict:
    recs = _records(args, sigma)
    eps, order = epsilon_for(recs, args.delta)
    r = recs[0]
    return {
        "epsilon": eps,
        "delta": args.delta,
        "order": order,
        "sigma": sigma,
        "sigma_over_gamma": sigma / args.gamma,
        "gamma": args.gamma,
        "clip": args.clip,
        "clients": args.clients,
        "dim": args.dim,
        "padded_dim": r.padded_dim,
        "beta": args.beta,
        "q": args.q,
        "rounds": args.rounds,
        "tau": r.tau(),
        "gaussian_baseline_epsilon": gaussian_baseline_epsilon(recs, args.delta),
        "sampling_model": "Poisson" if args.q < 1 else "none (q = 1)",
        "_title": title,
    }


def _emit(result: dict, as_json: bool) -> None:
    title = result.pop("_title")
    if as_json:
        print(json.dumps(result, sort_keys=True))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title)
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for key, value in result.items():
        table.add_row(key, f"{value:.6g}" if isinstance(value, float) else str(value))
    Console().print(table)


def _cmd_epsilon(args: argparse.Namespace) -> int:
    try:
        result = _report(args, args.sigma, "DDG privacy (KLS bound, RDP)")
    except DpParameterError as exc:
        return _fail(str(exc))
    _emit(result, args.json)
    return 0


def _cmd_calibrate(args: argparse.Namespace) -> int:
    try:
        sigma = calibrate_sigma(
            args.epsilon,
            args.delta,
            lambda s: _records(args, s),
            sigma_lo=0.5 * args.gamma,  # the smallest sigma/gamma the mechanism allows
        )
        result = _report(args, sigma, f"smallest sigma for epsilon <= {args.epsilon:g}")
    except DpParameterError as exc:
        return _fail(str(exc))
    result["target_epsilon"] = args.epsilon
    _emit(result, args.json)
    return 0


def _cmd_params(args: argparse.Namespace) -> int:
    n, c = args.clients, args.clip
    sigma = args.noise_multiplier * c / math.sqrt(n)  # local = central / sqrt(n)
    try:
        gamma = gamma_from_bits(args.bits, n, args.dim, c, sigma, args.wrap_prob)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            params = DdgParams(
                clip=c,
                bits=args.bits,
                gamma=gamma,
                sigma=sigma,
                clients=n,
                dim=args.dim,
                beta=args.beta,
                wrap_prob=args.wrap_prob,
            )
        rec = RoundRecord(
            contributors=n,
            sigma=sigma,
            gamma=gamma,
            clip=c,
            padded_dim=params.padded_dim,
            beta=args.beta,
        )
        eps, order = epsilon_for([rec], args.delta)
    except DpParameterError as exc:
        return _fail(str(exc))
    for w in caught:
        print(f"blindsum dp: warning: {w.message}", file=sys.stderr)
    result = {
        "bits": args.bits,
        "clients": n,
        "dim": args.dim,
        "padded_dim": params.padded_dim,
        "clip": c,
        "noise_multiplier": args.noise_multiplier,
        "wrap_prob": args.wrap_prob,
        "gamma": gamma,
        "scale": 1.0 / gamma,
        "sigma": sigma,
        "sigma_over_gamma": sigma / gamma,
        "delta2": params.delta2,
        "epsilon": eps,
        "order": order,
        "delta": args.delta,
        "gaussian_baseline_epsilon": gaussian_baseline_epsilon([rec], args.delta),
        "_title": "DDG parameters (TFF gamma rule), one round",
    }
    _emit(result, args.json)
    return 0
