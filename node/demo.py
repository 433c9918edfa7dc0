"""`blindsum demo --in-memory`: one round without network or training.

Simulated participants DP-encode random updates (clip, rotate, scale, round,
discrete Gaussian noise share, wrap mod 2^b), mask them with SecAgg+ (real
serialized messages; some participants drop out), and the aggregator unmasks
the sum and decodes the noised mean. The federation demo (`blindsum demo`)
lives in node/federation_demo.py.
"""

from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from node.cli_args import float_in, int_in


def add_in_memory_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("--in-memory options")
    g.add_argument("--clients", type=int_in(3, 1000), default=20)
    g.add_argument("--dim", type=int_in(1, 1 << 24), default=10_000)
    g.add_argument("--dropout", type=float_in(0.0, 1.0, False, True), default=0.1)


def run_in_memory_demo(
    *, clients: int, dim: int, bits: int, epsilon: float, delta: float, rounds: int, dropout: float
) -> dict:
    import dp
    from dp.planning import plan_ddg
    from secagg import crypto
    from secagg.graph import ThreatModel, find_parameters
    from secagg.simulate import run_simulation

    threat = ThreatModel(corrupt_fraction=0.05, dropout_fraction=max(dropout, 0.05))
    graph = find_parameters(clients, threat)
    clip = 1.0
    # The claim rests on the threshold t: fewer contributors abort the round.
    plan = plan_ddg(
        epsilon=epsilon,
        delta=delta,
        rounds=rounds,
        clients=clients,
        accounted_contributors=min(graph.t, clients),
        bits=bits,
        clip=clip,
        dim=dim,
    )
    params = plan.params
    round_seed = crypto.random_bytes(32)
    updates = {}
    for u in range(1, clients + 1):
        # demo data: random directions with norms around the clip (some clipped)
        direction = np.frombuffer(crypto.random_bytes(8 * dim), dtype=np.uint64) / 2.0**64 - 0.5
        updates[u] = direction * (1.5 * clip * (u / clients) / np.linalg.norm(direction))
    t0 = time.perf_counter()
    encoded = {u: dp.encode(x, params, round_seed) for u, x in updates.items()}
    encode_seconds = (time.perf_counter() - t0) / clients
    n_drop = int(dropout * clients)
    dropouts = {u: "masked-input" for u in range(1, n_drop + 1)}
    t0 = time.perf_counter()
    result = run_simulation(encoded, bits=bits, threat=threat, dropouts=dropouts)
    secagg_seconds = time.perf_counter() - t0
    if result.released is None:
        raise SystemExit(f"blindsum demo: the round aborted: {result.server_abort}")
    survivors = result.survivor_sets[3]
    t0 = time.perf_counter()
    mean = dp.decode(result.released, params, round_seed, contributors=len(survivors))
    decode_seconds = time.perf_counter() - t0
    clipped = [x * min(1.0, clip / np.linalg.norm(x)) for u, x in updates.items() if u in survivors]
    truth = np.mean(clipped, axis=0)
    error = mean - truth
    record = plan.record(contributors=len(survivors))
    eps_round, _ = dp.epsilon_for([record], delta)
    return {
        "clients": clients,
        "dim": dim,
        "padded_dim": params.padded_dim,
        "bits": bits,
        "k": result.k,
        "t": result.t,
        "dropped": n_drop,
        "contributors": len(survivors),
        "secagg_correct": result.correct,
        "sigma": params.sigma,
        "gamma": params.gamma,
        "sigma_over_gamma": params.sigma / params.gamma,
        "noise_multiplier": plan.noise_multiplier,
        "epsilon_target": epsilon,
        "epsilon_planned": plan.epsilon,
        "rounds_planned": rounds,
        "epsilon_this_round": eps_round,
        "delta": delta,
        "error_rms": float(np.sqrt(np.mean(error**2))),
        "expected_noise_rms": float(params.sigma / math.sqrt(len(survivors))),
        "true_mean_norm": float(np.linalg.norm(truth)),
        "encode_seconds_per_client": encode_seconds,
        "secagg_round_seconds": secagg_seconds,
        "decode_seconds": decode_seconds,
    }


def run_in_memory(args: argparse.Namespace) -> int:
    report = run_in_memory_demo(
        clients=args.clients,
        dim=args.dim,
        bits=args.bits,
        epsilon=args.epsilon,
        delta=args.delta,
        rounds=args.rounds,
        dropout=args.dropout,
    )
    if args.json:
        print(json.dumps(report))
        return 0 if report["secagg_correct"] else 1
    from rich.console import Console
    from rich.table import Table

    console = Console()
    console.print("[bold]blindsum demo[/bold] (in memory: no network, no training yet)")
    params = Table(title="DDG parameters (planned for the epsilon target)")
    params.add_column("parameter")
    params.add_column("value", justify="right")
    for key, fmt in (
        ("clients", "{}"),
        ("dim", "{}"),
        ("padded_dim", "{}"),
        ("bits", "{}"),
        ("noise_multiplier", "{:.4f}"),
        ("sigma", "{:.4g}"),
        ("gamma", "{:.4g}"),
        ("sigma_over_gamma", "{:.1f}"),
        ("epsilon_target", "{:g}"),
        ("rounds_planned", "{}"),
        ("epsilon_planned", "{:.4f}"),
        ("delta", "{:g}"),
    ):
        params.add_row(key, fmt.format(report[key]))
    console.print(params)
    rnd = Table(title="One round: encode -> SecAgg+ -> decode")
    rnd.add_column("measure")
    rnd.add_column("value", justify="right")
    rows = (
        ("SecAgg+ graph (k, t)", f"({report['k']}, {report['t']})"),
        ("dropped after ShareKeys", str(report["dropped"])),
        ("contributors in the sum", str(report["contributors"])),
        ("secure sum exact", str(report["secagg_correct"])),
        ("epsilon of this round", f"{report['epsilon_this_round']:.4f}"),
        ("decoded-mean error (RMS)", f"{report['error_rms']:.3e}"),
        ("expected noise (RMS, sigma/sqrt(n))", f"{report['expected_noise_rms']:.3e}"),
        ("encode per client", f"{report['encode_seconds_per_client'] * 1e3:.1f} ms"),
        ("secure aggregation (all parties, serial)", f"{report['secagg_round_seconds']:.2f} s"),
        ("decode", f"{report['decode_seconds'] * 1e3:.1f} ms"),
    )
    for row in rows:
        rnd.add_row(*row)
    console.print(rnd)
    return 0 if report["secagg_correct"] else 1
