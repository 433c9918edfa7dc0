"""`blindsum bench dp`: discrete Gaussian sampler throughput and DDG encode/decode time.

Single process, so numpy and AES run on one core (pycryptodome and numpy do not spawn
threads for these operations). Best of `repeats` runs, after one warm-up.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import time

import numpy as np

from dp import CsprngSource, DdgParams, decode, encode, gamma_from_bits, sample_discrete_gaussian

SIGMAS = (1, 100, 10_000)
DIMS = (100_000, 1_000_000)


def _best(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def run_dp_bench(samples: int = 2_000_000, repeats: int = 3, dims: tuple[int, ...] = DIMS) -> dict:
    """Measure and return {'sampler': [...], 'codec': [...], 'machine': {...}}."""
    rng = CsprngSource()
    sampler = []
    for s in SIGMAS:
        t = _best(lambda s=s: sample_discrete_gaussian(s, samples, rng), repeats)
        sampler.append({"sigma": s, "samples": samples, "seconds": t, "samples_per_s": samples / t})
    codec = []
    clients, bits, clip, z = 100, 20, 1.0, 1.0
    sigma = z * clip / math.sqrt(clients)
    seed = b"bench-round-seed-0000"
    for d in dims:
        gamma = gamma_from_bits(bits, clients, d, clip, sigma)
        p = DdgParams(clip=clip, bits=bits, gamma=gamma, sigma=sigma, clients=clients, dim=d)
        x = np.cos(np.arange(d, dtype=np.float64)) / math.sqrt(d)
        z_enc = encode(x, p, seed, rng)
        t_enc = _best(lambda p=p, x=x: encode(x, p, seed, rng), repeats)
        t_dec = _best(lambda p=p, z_enc=z_enc: decode(z_enc, p, seed, clients), repeats)
        codec.append(
            {
                "dim": d,
                "padded_dim": p.padded_dim,
                "bits": bits,
                "clients": clients,
                "sigma_over_gamma": p.sigma_scaled,
                "encode_s": t_enc,
                "decode_s": t_dec,
            }
        )
    return {
        "sampler": sampler,
        "codec": codec,
        "machine": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "processor": platform.processor() or platform.machine(),
        },
    }


def _print(result: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    con = Console()
    t = Table(title="discrete Gaussian sampler (exact, one core)")
    for col in ("sigma", "samples", "seconds", "samples/s"):
        t.add_column(col, justify="right")
    for r in result["sampler"]:
        t.add_row(
            str(r["sigma"]),
            f"{r['samples']:,}",
            f"{r['seconds']:.3f}",
            f"{r['samples_per_s']:,.0f}",
        )
    con.print(t)
    t = Table(title="DDG codec (b=20, n=100, z=1, c=1)")
    for col in ("d", "d'", "sigma/gamma", "encode s", "decode s"):
        t.add_column(col, justify="right")
    for r in result["codec"]:
        t.add_row(
            f"{r['dim']:,}",
            f"{r['padded_dim']:,}",
            f"{r['sigma_over_gamma']:.4g}",
            f"{r['encode_s']:.3f}",
            f"{r['decode_s']:.3f}",
        )
    con.print(t)


def _cmd(args: argparse.Namespace) -> int:
    result = run_dp_bench(samples=args.samples, repeats=args.repeats)
    if args.out:
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(result, fh, indent=2)
    if args.json:
        print(json.dumps(result))
    else:
        _print(result)
    return 0


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `dp` benchmark (hung under `blindsum bench` by bench/cli.py)."""
    p = subparsers.add_parser("dp", help="DP sampler and codec benchmark")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.add_argument("--out", metavar="FILE", help="also save the result as JSON")
    p.add_argument("--samples", type=int, default=2_000_000, help="samples per sigma")
    p.add_argument("--repeats", type=int, default=3, help="timed runs (best is reported)")
    p.set_defaults(func=_cmd)


if __name__ == "__main__":
    import sys

    parser = argparse.ArgumentParser(prog="dp_bench")
    add_parser(parser.add_subparsers(dest="cmd", required=True))
    ns = parser.parse_args(["dp", *sys.argv[1:]])
    sys.exit(ns.func(ns))
