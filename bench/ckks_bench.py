"""`blindsum bench ckks`: the CKKS path (TenSEAL) vs the masking path (SecAgg+).

For every (n, d) in the grid, the same random inputs mod 2^b (what `dp.encode`
produces) go through both paths in memory:

- CKKS (`node.ckks.simulate_ckks_round`): committee key set-up (2 members), every
  participant verifies the lead-signed public context, encrypts (worker processes)
  and signs its upload receipt; the aggregator adds each upload into one running
  encrypted sum as it arrives; every committee member decrypts, rounds, checks
  and signs; release only on agreement.
- masking (`secagg.simulate.run_simulation`): one SecAgg+ round (Harary graph,
  5% corrupt, 1% dropout design point), participants serial, aggregator mask
  removal on all cores.

Both released sums are compared with the plaintext sum mod 2^b (and hence with
each other). Times are wall-clock seconds on this machine; bytes are the
serialized ciphertexts (CKKS) and all protobuf messages (masking) a participant
sends.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np

from node.cli_args import int_in
from secagg.simulate import RandomInputs, run_simulation


def _int_list(lo: int, hi: int):
    one = int_in(lo, hi)

    def parse(text: str) -> list[int]:
        return [one(part.strip()) for part in text.split(",") if part.strip()]

    return parse


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "ckks", help="CKKS homomorphic path vs the masking path: time and bytes per participant"
    )
    p.add_argument("--clients", type=_int_list(3, 100_000), default=[10, 100],
                   help="comma-separated participant counts (default 10,100)")  # fmt: skip
    p.add_argument("--dim", type=_int_list(1, 1 << 28), default=[100_000, 1_000_000],
                   help="comma-separated dimensions d' (default 100000,1000000)")  # fmt: skip
    p.add_argument("--bits", type=int_in(2, 32), default=16)
    p.add_argument("--workers", type=int_in(1, 256), default=os.cpu_count() or 1,
                   help="encryption worker processes per participant (default: all cores)")  # fmt: skip
    p.add_argument("--committee", type=int_in(1, 16), default=2, help="committee size (default 2)")
    p.add_argument("--no-masking", action="store_true", help="skip the masking-path comparison")
    p.add_argument("--json", action="store_true", help="print one JSON object per line")
    p.set_defaults(func=run_command)


def _plain_sum(inputs, bits: int) -> np.ndarray:
    dim = len(inputs[next(iter(inputs))])
    total = np.zeros(dim, dtype=np.uint64)
    for u in inputs:
        total += inputs[u]
    total &= np.uint64((1 << bits) - 1)
    return total


def run_ckks_bench(
    *,
    clients: int,
    dim: int,
    bits: int = 16,
    workers: int = 1,
    committee: int = 2,
    masking: bool = True,
    executor=None,
) -> dict:
    """One (n, d) point: both paths on the same inputs; a JSON-ready dict."""
    from node.ckks import encryption_pool, simulate_ckks_round

    inputs = RandomInputs(clients, dim, bits)
    expected = _plain_sum(inputs, bits)
    own = encryption_pool(workers, "fork") if workers > 1 and executor is None else None
    try:
        t0 = time.perf_counter()
        ckks = simulate_ckks_round(
            inputs, bits, committee_size=committee, workers=workers, executor=executor or own
        )
        ckks_round = time.perf_counter() - t0
    finally:
        if own is not None:
            own.shutdown()
    if ckks.error is not None:
        raise ckks.error
    ckks_correct = bool(np.array_equal(ckks.released.astype(np.uint64), expected))
    p = ckks.parameters
    enc = list(ckks.encrypt_seconds.values())
    report = {
        "clients": clients,
        "dim": dim,
        "bits": bits,
        "workers": workers,
        "ckks": {
            "poly_modulus_degree": p.poly_modulus_degree,
            "coeff_mod_bit_sizes": list(p.coeff_mod_bit_sizes),
            "scale_bits": p.scale_bits,
            "chunks": p.chunks(dim),
            "committee": committee,
            "correct": ckks_correct,
            "setup_seconds": ckks.setup_seconds,
            "encrypt_seconds_mean": statistics.fmean(enc),
            "encrypt_seconds_max": max(enc),
            "aggregate_seconds": ckks.aggregate_seconds,
            "aggregate_seconds_per_upload": ckks.aggregate_seconds / len(enc),
            "decrypt_seconds_mean": statistics.fmean(ckks.decrypt_seconds.values()),
            "bytes_up_per_participant": statistics.fmean(ckks.bytes_up.values()),
            "public_context_bytes": ckks.public_context_bytes,
            "sealed_secret_context_bytes": max(ckks.sealed_context_bytes.values(), default=0),
            "encrypted_sum_bytes": ckks.sum_bytes,
            "round_seconds": ckks_round,
        },
    }
    del ckks
    if masking:
        t0 = time.perf_counter()
        from concurrent.futures import ThreadPoolExecutor

        from bench.secagg_bench import bench_threat

        mask_workers = os.cpu_count() or 1
        with ThreadPoolExecutor(mask_workers) as pool:
            res = run_simulation(
                inputs,
                bits=bits,
                threat=bench_threat(0.05, 0.0),
                map_function=pool.map,
                workers=mask_workers,
            )
        masking_round = time.perf_counter() - t0
        totals: dict[int, float] = {}
        for stage_times in res.participant_seconds.values():
            for u, s in stage_times.items():
                totals[u] = totals.get(u, 0.0) + s
        masked = res.participant_seconds.get("masked-input", {})
        report["masking"] = {
            "correct": bool(
                res.released is not None
                and np.array_equal(res.released.astype(np.uint64), expected)
            ),
            "k": res.k,
            "t": res.t,
            "participant_seconds_mean": statistics.fmean(totals.values()),
            "masked_input_seconds_mean": statistics.fmean(masked.values()) if masked else 0.0,
            "aggregator_seconds": sum(res.aggregator_seconds.values()),
            "bytes_up_per_participant": statistics.fmean(res.bytes_up.values()),
            "round_seconds": masking_round,
        }
        report["identical_sums"] = report["ckks"]["correct"] and report["masking"]["correct"]
    report["peak_rss_bytes"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    report["python"] = sys.version.split()[0]
    return report


def run_command(args: argparse.Namespace) -> int:
    from node.ckks import CkksError, encryption_pool, warm_up

    ok = True
    pool = encryption_pool(args.workers, "fork") if args.workers > 1 else None
    if pool is not None:
        warm_up(pool, args.workers)
    try:
        for dim in args.dim:
            for clients in args.clients:
                try:
                    report = run_ckks_bench(
                        clients=clients,
                        dim=dim,
                        bits=args.bits,
                        workers=args.workers,
                        committee=args.committee,
                        masking=not args.no_masking,
                        executor=pool,
                    )
                except (CkksError, ValueError) as exc:
                    print(f"blindsum bench ckks: error: {exc}", file=sys.stderr)
                    return 2
                ok &= report["ckks"]["correct"] and report.get("masking", {}).get("correct", True)
                if args.json:
                    print(json.dumps(report), flush=True)
                else:
                    _print_report(report)
    finally:
        if pool is not None:
            pool.shutdown()
    return 0 if ok else 1


def _print_report(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    c, m = r["ckks"], r.get("masking")
    table = Table(
        title=f"n={r['clients']} d={r['dim']} bits={r['bits']} | CKKS N={c['poly_modulus_degree']} "
        f"{c['coeff_mod_bit_sizes']} scale 2^{c['scale_bits']}, {c['chunks']} chunks"
    )
    table.add_column("per participant / aggregator")
    table.add_column("CKKS", justify="right")
    table.add_column("masking (SecAgg+)", justify="right")
    na = "-"
    table.add_row(
        "participant seconds (mean)",
        f"{c['encrypt_seconds_mean']:.3f} (encrypt)",
        f"{m['participant_seconds_mean']:.3f} (all stages)" if m else na,
    )
    table.add_row(
        "aggregator seconds (sum/unmask)",
        f"{c['aggregate_seconds']:.3f}",
        f"{m['aggregator_seconds']:.3f}" if m else na,
    )
    table.add_row("committee decrypt seconds (mean)", f"{c['decrypt_seconds_mean']:.3f}", na)
    table.add_row(
        "upload MB per participant",
        f"{c['bytes_up_per_participant'] / 1e6:.2f}",
        f"{m['bytes_up_per_participant'] / 1e6:.2f}" if m else na,
    )
    table.add_row("released sum correct", str(c["correct"]), str(m["correct"]) if m else na)
    Console().print(table)
