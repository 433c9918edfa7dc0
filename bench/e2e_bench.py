"""`blindsum bench e2e`: rounds over real gRPC + mTLS on 127.0.0.1 with N node processes.

Provisions a throw-away federation (as `blindsum demo` does), widens the mlp so
the update has about --dim parameters, runs the rounds, and reports the
aggregator's per-stage wall time (from its signed transcript) next to each
node's own breakdown (training, DP encode, secagg crypto, network), read from
the nodes' timings files.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from node.cli_args import int_in, positive

STAGES = ("advertise_keys", "share_keys", "masked_input", "consistency", "unmasking")
# digits: 64 features, 10 classes -> mlp parameters = 75 h + 10
MLP_PARAMS_PER_HIDDEN, MLP_FIXED_PARAMS = 75, 10


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("e2e", help="rounds over real gRPC + mTLS with N node processes")
    p.add_argument("--nodes", type=int_in(3, 200), default=20)
    p.add_argument("--dim", type=int_in(100, 1 << 26), default=1_000_000,
                   help="approximate model dimension (an mlp widened to reach it)")  # fmt: skip
    p.add_argument("--rounds", type=int_in(1, 100), default=1)
    p.add_argument("--bits", type=int_in(1, 62), default=20)
    p.add_argument("--epochs", type=int_in(1, 100), default=1)
    p.add_argument("--timeout", type=positive, default=1800.0)
    p.add_argument("--keep", type=Path, default=None, help="keep the federation in this directory")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=run_command)


def run_e2e_bench(*, nodes: int, dim: int, rounds: int = 1, bits: int = 20, epochs: int = 1,
                  timeout: float = 1800.0, root: Path | None = None) -> dict:  # fmt: skip
    from node.federation_demo import run_federation
    from node.provision import FederationOptions
    from node.transcript import verify_transcript

    hidden = max(1, round((dim - MLP_FIXED_PARAMS) / MLP_PARAMS_PER_HIDDEN))
    slow = {"join": 300.0, "advertise_keys": 120.0, "share_keys": 120.0, "masked_input": 900.0,
            "consistency": 120.0, "unmasking": 300.0}  # fmt: skip
    options = FederationOptions(
        nodes=nodes, rounds=rounds, model="mlp", hidden=hidden, epsilon=10.0, bits=bits,
        epochs=epochs, deadlines=slow, epsilon_cap=1e6,
    )  # fmt: skip
    owned = root is None
    root = Path(tempfile.mkdtemp(prefix="blindsum-e2e-")) if owned else root
    t0 = time.perf_counter()
    report = run_federation(options, root / "federation", timeout=timeout, baseline=False)
    wall = time.perf_counter() - t0
    fed_root = Path(report["run_dir"])
    records = verify_transcript(fed_root / "run" / "transcript.jsonl")
    rounds_out = [r["body"] for r in records if r["kind"] == "round"]
    start = next(r["body"] for r in records if r["kind"] == "run-start")
    timings = []
    for i in range(nodes):
        path = fed_root / f"site-{i + 1}" / "timings.jsonl"
        if path.exists():
            timings += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    node_keys = sorted({k for t in timings for k in t if k not in ("round", "node")})
    node_breakdown = {
        k: {"mean": statistics.fmean(t.get(k, 0.0) for t in timings),
            "max": max(t.get(k, 0.0) for t in timings)}
        for k in node_keys
    } if timings else {}  # fmt: skip
    stage = (
        {s: statistics.fmean(r["stage_seconds"].get(s, 0.0) for r in rounds_out) for s in STAGES}
        if rounds_out
        else {}
    )
    return {
        "ok": report["ok"],
        "nodes": nodes,
        "dim": start["dp"]["dim"],
        "padded_dim": start["dp"]["padded_dim"],
        "bits": bits,
        "rounds": len(rounds_out),
        "graph": rounds_out[0]["graph"] if rounds_out else None,
        "aggregator_stage_seconds": stage,
        "aggregator_round_seconds": sum(stage.values()),
        "decode_seconds": statistics.fmean(r["decode_seconds"] for r in rounds_out)
        if rounds_out
        else None,
        "node_seconds": node_breakdown,
        "upload_bytes_per_node": start["dp"]["padded_dim"] * (4 if bits <= 32 else 8),
        "wall_seconds_including_startup": wall,
        "run_dir": str(fed_root) if not owned else None,
    }


def run_command(args: argparse.Namespace) -> int:
    report = run_e2e_bench(nodes=args.nodes, dim=args.dim, rounds=args.rounds, bits=args.bits,
                           epochs=args.epochs, timeout=args.timeout, root=args.keep)  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        _print(report)
    return 0 if report["ok"] else 1


def _print(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    agg = Table(title=f"e2e: {r['nodes']} nodes, d={r['dim']} (d'={r['padded_dim']}), {r['bits']} bits, "
                      f"graph k={r['graph']['k'] if r['graph'] else '?'}, mTLS on 127.0.0.1")  # fmt: skip
    agg.add_column("aggregator stage")
    agg.add_column("wall seconds (mean per round)", justify="right")
    for s, v in r["aggregator_stage_seconds"].items():
        agg.add_row(s, f"{v:.3f}")
    agg.add_row("decode + update + evaluate", f"{r['decode_seconds'] or 0:.3f}")
    console.print(agg)
    nodes = Table(title="per node, per round")
    nodes.add_column("activity")
    nodes.add_column("mean s", justify="right")
    nodes.add_column("max s", justify="right")
    for k, v in r["node_seconds"].items():
        nodes.add_row(k, f"{v['mean']:.3f}", f"{v['max']:.3f}")
    console.print(nodes)
    console.print(f"ok={r['ok']}; upload {r['upload_bytes_per_node'] / 2**20:.2f} MiB per node per round; "
                  f"wall {r['wall_seconds_including_startup']:.1f} s including process start-up")  # fmt: skip
