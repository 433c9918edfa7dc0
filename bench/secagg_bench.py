"""`blindsum bench secagg`: one simulated SecAgg(+) round on random inputs.

All participants run serially in this process (their times are per
participant); the aggregator spreads its mask jobs over the available cores.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from node.cli_args import float_in, int_in
from secagg import crypto
from secagg.graph import ThreatModel
from secagg.server import mask_worker_pool
from secagg.simulate import STAGES, RandomInputs, run_simulation

DROP_STAGES = STAGES[1:]
FRACTION = float_in(0.0, 1.0, False, True)  # dropping before advertising is just not being invited


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("secagg", help="one in-memory SecAgg/SecAgg+ round on random inputs")
    p.add_argument("--clients", type=int_in(3, 100_000), default=100)
    p.add_argument("--dim", type=int_in(1, 1 << 31), default=100_000)
    p.add_argument("--bits", type=int_in(1, 62), default=32)
    p.add_argument(
        "--dropout",
        type=FRACTION,
        default=0.0,
        help="fraction of participants that drop (default 0)",
    )
    p.add_argument(
        "--drop-stage",
        choices=DROP_STAGES,
        default="masked-input",
        help="the stage whose message the dropped participants never send "
        "(default masked-input: they drop right after ShareKeys)",
    )
    p.add_argument("--graph", choices=("full", "harary"), default="harary")
    p.add_argument("--corrupt-fraction", type=FRACTION, default=0.05)
    p.add_argument("--repeat", type=int_in(1, 1000), default=1)
    p.add_argument(
        "--workers",
        type=int_in(1, 256),
        default=os.cpu_count() or 1,
        help="aggregator mask-removal workers (default: all cores)",
    )
    p.add_argument(
        "--mask-workers",
        choices=("processes", "threads"),
        default="processes",
        help="run the workers as spawned processes (default; as the node aggregator "
        "does) or as threads of the aggregator's process",
    )
    p.add_argument(  # the flag of earlier recorded commands; processes are now the default
        "--worker-processes",
        dest="mask_workers",
        action="store_const",
        const="processes",
        help=argparse.SUPPRESS,
    )
    p.add_argument(
        "--participants-process",
        action="store_true",
        help="run the participants in a child process, so peak RSS is the aggregator's alone",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no per-stage progress bar on stderr (shown only when stderr is a terminal)",
    )
    p.set_defaults(func=run_command)


def run_secagg_bench(
    *,
    clients: int,
    dim: int,
    bits: int = 32,
    dropout: float = 0.0,
    drop_stage: str = "masked-input",
    graph: str = "harary",
    corrupt_fraction: float = 0.05,
    workers: int = 1,
    participants_in_subprocess: bool = False,
    worker_processes: bool = False,
    progress: Callable[[str, int, int], None] | None = None,
) -> dict:
    """One round; returns the measurements as a JSON-ready dict."""
    inputs = RandomInputs(clients, dim, bits)
    dropped = _choose(sorted(inputs), int(dropout * clients))
    threat = bench_threat(corrupt_fraction, dropout)
    if workers <= 1:
        pool = None
    elif worker_processes:
        pool = mask_worker_pool(workers)  # start-up and imports not timed
    else:
        pool = ThreadPoolExecutor(workers)
    try:
        t0 = time.perf_counter()
        result = run_simulation(
            inputs,
            bits=bits,
            graph=graph,
            threat=threat,
            dropouts={u: drop_stage for u in dropped},
            map_function=pool.map if pool else None,
            workers=workers,
            participants_in_subprocess=participants_in_subprocess,
            progress=progress,
        )
        round_seconds = time.perf_counter() - t0
    finally:
        if pool:
            pool.shutdown()
    per_participant = {}
    for stage in STAGES:
        times = list(result.participant_seconds.get(stage, {}).values())
        if times:
            per_participant[stage] = {"mean": statistics.fmean(times), "max": max(times)}
    totals = result.participant_totals()
    masking = _masking_rate(dim, bits)
    keystream = crypto.measure_keystream_rate()
    return {
        "correct": bool(result.correct),
        "aborted": result.server_abort.reason.value if result.server_abort else None,
        "clients": clients,
        "dim": dim,
        "bits": bits,
        "graph": "full" if result.full_graph else "harary",
        "dropout": dropout,
        "drop_stage": drop_stage,
        "dropped": len(dropped),
        "k": result.k,
        "t": result.t,
        "survivors": {f"U{i}": len(s) for i, s in result.survivor_sets.items()},
        "aggregator_seconds": sum(result.aggregator_seconds.values()),
        "aggregator_stage_seconds": result.aggregator_seconds,
        "participant_stage_seconds": per_participant,
        "participant_seconds_mean": mean(totals.values()),
        "participant_seconds_max": max(totals.values(), default=0.0),
        "round_seconds": round_seconds,
        "bytes_up_per_participant": mean(result.bytes_up.values()),
        "bytes_down_per_participant": mean(result.bytes_down.values()),
        "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "keystream_bytes_per_second": keystream,
        "masking_bytes_per_second": masking,
        "masking_fraction_of_keystream": masking / keystream,
        "workers": workers,
        # with participants in a child process, peak_rss_bytes is the aggregator's alone
        "participants_in_subprocess": participants_in_subprocess,
        "worker_processes": worker_processes,
    }


def mean(values: Iterable[float]) -> float:
    """The mean, or 0.0 for no values (e.g. nobody survived to upload)."""
    values = list(values)
    return statistics.fmean(values) if values else 0.0


def bench_threat(corrupt_fraction: float, dropout: float) -> ThreatModel:
    """The threat model a benchmark round is sized for: its own dropout rate (at least one)."""
    return ThreatModel(corrupt_fraction=corrupt_fraction, dropout_fraction=max(dropout, 0.01))


def _choose(ids: list[int], count: int) -> list[int]:
    pool = list(ids)
    return [pool.pop(secrets.randbelow(len(pool))) for _ in range(count)]


def _masking_rate(dim: int, bits: int) -> float:
    """Mask-add throughput (keystream bytes consumed per second) at this size: the
    best single call out of enough calls to cover ~64 MB (at least 5), which is
    what `crypto.measure_keystream_rate` streams per timed run."""
    gen = crypto.MaskGenerator()
    acc = np.zeros(dim, dtype=crypto.mask_dtype(bits))
    repeats = max(5, min(1000, (64 << 20) // max(1, acc.nbytes)))
    session, seed = crypto.random_bytes(32), crypto.random_bytes(32)
    best = float("inf")
    for i in range(repeats):
        t0 = time.perf_counter()
        gen.add(acc, seed, session=session, owners=(i,), vector="bench", bits=bits)
        best = min(best, time.perf_counter() - t0)
    return acc.nbytes / best


def run_command(args: argparse.Namespace) -> int:
    from secagg.errors import ConfigurationError
    from secagg.graph import find_parameters, full_graph_parameters

    threat = bench_threat(args.corrupt_fraction, args.dropout)
    try:
        (full_graph_parameters if args.graph == "full" else find_parameters)(args.clients, threat)
    except ConfigurationError as exc:
        print(f"blindsum bench secagg: error: {exc}", file=sys.stderr)
        return 2
    with _StageProgress(not args.no_progress and sys.stderr.isatty()) as progress:
        runs = []
        for i in range(args.repeat):
            progress.round = f"round {i + 1}/{args.repeat}" if args.repeat > 1 else ""
            runs.append(
                run_secagg_bench(
                    clients=args.clients,
                    dim=args.dim,
                    bits=args.bits,
                    dropout=args.dropout,
                    drop_stage=args.drop_stage,
                    graph=args.graph,
                    corrupt_fraction=args.corrupt_fraction,
                    workers=args.workers,
                    participants_in_subprocess=args.participants_process,
                    worker_processes=args.mask_workers == "processes",
                    progress=progress.update if progress.enabled else None,
                )
            )
    report = dict(runs[-1])
    if args.repeat > 1:
        for key in (
            "aggregator_seconds",
            "participant_seconds_mean",
            "participant_seconds_max",
            "round_seconds",
        ):
            values = [r[key] for r in runs]
            report[key] = statistics.median(values)
            report[f"{key}_min"], report[f"{key}_max"] = min(values), max(values)
        report["correct"] = all(r["correct"] for r in runs)
        report["repeat"] = args.repeat
        # per stage too, the median over the repeats (these need not add up to the
        # median total); every repeat's own figures are in "runs"
        report["aggregator_stage_seconds"] = {
            stage: statistics.median(r["aggregator_stage_seconds"].get(stage, 0.0) for r in runs)
            for stage in STAGES
            if any(stage in r["aggregator_stage_seconds"] for r in runs)
        }
        report["participant_stage_seconds"] = {
            stage: {
                stat: statistics.median(
                    r["participant_stage_seconds"].get(stage, {}).get(stat, 0.0) for r in runs
                )
                for stat in ("mean", "max")
            }
            for stage in STAGES
            if any(stage in r["participant_stage_seconds"] for r in runs)
        }
        report["runs"] = [{key: r[key] for key in _PER_RUN_KEYS} for r in runs]
    if args.json:
        print(json.dumps(report))
    else:
        _print_report(report)
    return 0 if report["correct"] else 1


class _StageProgress:
    """One rich progress bar on stderr per stage (participants served so far)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled, self.round = enabled, ""
        self._bar = self._task = None

    def __enter__(self) -> _StageProgress:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(bar_width=30),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=Console(stderr=True),
                transient=True,
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=1)
        return self

    def update(self, stage: str, done: int, total: int) -> None:
        label = f"{self.round} {stage}".strip()
        self._bar.update(self._task, description=label, completed=done, total=max(1, total))

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


_PER_RUN_KEYS = (
    "correct",
    "aggregator_seconds",
    "aggregator_stage_seconds",
    "participant_seconds_mean",
    "round_seconds",
    "peak_rss_bytes",
)


def _print_report(r: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = (
        f"SecAgg{'+' if r['graph'] == 'harary' else ''} n={r['clients']} d={r['dim']} bits={r['bits']} "
        f"graph={r['graph']} k={r['k']} t={r['t']} dropped={r['dropped']} at {r['drop_stage']}"
    )
    table = Table(title=head)
    table.add_column("stage")
    table.add_column("participant mean (ms)", justify="right")
    table.add_column("participant max (ms)", justify="right")
    table.add_column("aggregator (ms)", justify="right")
    for stage in STAGES:
        p = r["participant_stage_seconds"].get(stage, {"mean": 0.0, "max": 0.0})
        table.add_row(
            stage,
            f"{p['mean'] * 1e3:.2f}",
            f"{p['max'] * 1e3:.2f}",
            f"{r['aggregator_stage_seconds'].get(stage, 0.0) * 1e3:.2f}",
        )
    table.add_row(
        "total",
        f"{r['participant_seconds_mean'] * 1e3:.2f}",
        f"{r['participant_seconds_max'] * 1e3:.2f}",
        f"{r['aggregator_seconds'] * 1e3:.2f}",
    )
    if r.get("repeat"):
        table.caption = (
            f"every figure: the median of {r['repeat']} repeats; aggregator total "
            f"[{r['aggregator_seconds_min'] * 1e3:.2f}–{r['aggregator_seconds_max'] * 1e3:.2f}] ms"
        )
    console.print(table)
    console.print(
        f"round {r['round_seconds']:.3f} s (participants serial) | up {r['bytes_up_per_participant'] / 1e3:.1f} kB"
        f" / down {r['bytes_down_per_participant'] / 1e3:.1f} kB per participant | peak RSS "
        f"{r['peak_rss_bytes'] / 2**20:.0f} MiB"
    )
    console.print(
        f"keystream {r['keystream_bytes_per_second'] / 1e9:.2f} GB/s | masking "
        f"{r['masking_bytes_per_second'] / 1e9:.2f} GB/s ({100 * r['masking_fraction_of_keystream']:.0f}% of keystream)"
    )
    console.print(
        f"correct: {r['correct']}" + (f" (aborted: {r['aborted']})" if r["aborted"] else "")
    )
