"""`blindsum bench sweep`: a grid of simulated SecAgg(+) rounds, resumable, with physical limits.

The grid comes from comma lists on the command line, from a TOML file, or both
(flags override the file's top-level values). A TOML file may also hold several
sub-grids as `[[grid]]` tables; each inherits the top-level values and the sweep
runs their union, e.g.

    repeat = 3
    dim = [100000]
    [[grid]]
    clients = [50, 100, 200]
    graph = ["full", "harary"]
    [[grid]]
    clients = [100]
    dim = [10000, 100000, 1000000]

Every repeat of every point is appended to DIR/results.jsonl and DIR/results.csv
as soon as it finishes; a rerun skips (point, repeat) pairs already in
results.jsonl, so an interrupted sweep resumes where it stopped. Each row
carries the physical limits measured in the same process just before the round
(AES-CTR keystream rate, numpy uint32 add rate) and a plaintext baseline (the
same inputs summed with no protection).

Nothing runs and nothing is written unless the whole grid is valid.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import importlib.util
import itertools
import json
import math
import os
import platform
import resource
import statistics
import sys
import time
import tomllib
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from node.cli_args import float_in, int_in
from secagg import crypto
from secagg.simulate import STAGES, RandomInputs, run_simulation

DROP_STAGES = STAGES[1:]
GRAPHS = ("full", "harary")
PATHS = ("masking", "ckks")
DP_MODES = ("off", "on")
MAX_CLIENTS = 100_000
MAX_DIM = 1 << 31
# dp=on materialises every encoded input (n x d' lanes); refuse points above this.
DP_INPUT_BYTES_LIMIT = 8 << 30

RESULTS_JSONL = "results.jsonl"
RESULTS_CSV = "results.csv"
RUNS_JSONL = "runs.jsonl"

# Scalar columns written to results.csv, in order (results.jsonl has these and more).
CSV_COLUMNS = (
    "key", "repeat", "clients", "dim", "bits", "dropout", "drop_stage", "graph", "path", "dp",
    "secagg_dim", "lane_bytes", "k", "t", "dropped", "survivors", "correct", "aborted",
    "participant_seconds_mean", "participant_seconds_max", "participant_mask_seconds",
    "aggregator_seconds", "round_seconds", "plaintext_sum_seconds",
    "dp_encode_seconds", "dp_decode_seconds",
    "bytes_up_per_participant", "bytes_down_per_participant",
    "peak_rss_bytes", "baseline_rss_bytes", "traced_peak_bytes", "aggregator_heap_bytes",
    "keystream_bytes_per_second", "add_elements_per_second", "masking_bytes_per_second",
    "masks_removed", "participant_limit_seconds", "aggregator_limit_seconds",
    "round_limit_seconds", "workers", "finished_at",
)  # fmt: skip


class GridError(ValueError):
    """An invalid grid value; the message names the key and the bad value."""


# ---------------------------------------------------------------------------
# The grid


@dataclasses.dataclass(frozen=True)
class Point:
    """One configuration of the sweep (repeated `repeat` times)."""

    clients: int
    dim: int
    bits: int = 32
    dropout: float = 0.0
    drop_stage: str = "masked-input"
    graph: str = "harary"
    path: str = "masking"
    dp: str = "off"

    @property
    def key(self) -> str:
        """Stable identity of the point (resume matches on it)."""
        return (
            f"n={self.clients};d={self.dim};b={self.bits};drop={self.dropout:g}@{self.drop_stage};"
            f"graph={self.graph};path={self.path};dp={self.dp}"
        )


@dataclasses.dataclass(frozen=True)
class Grid:
    points: tuple[Point, ...]
    repeat: int = 1
    workers: int = 1
    corrupt_fraction: float = 0.05
    # Also run one untimed round per repeat under tracemalloc (Python + numpy heap peak).
    trace_memory: bool = False
    # Per-point repeat counts where a [[grid]] table sets its own `repeat`.
    repeats: tuple[int, ...] = ()

    def repeat_of(self, index: int) -> int:
        return self.repeats[index] if self.repeats else self.repeat

    def runs(self) -> list[tuple[Point, int]]:
        return [(p, r) for i, p in enumerate(self.points) for r in range(self.repeat_of(i))]


# Axis name -> (parser of one textual value, validator of one typed value).
def _ckks_available() -> bool:
    try:
        return importlib.util.find_spec("node.ckks") is not None
    except (ImportError, ValueError):
        return False


def _choice(name: str, allowed: Sequence[str]) -> Callable[[object], str]:
    def check(value: object) -> str:
        if not isinstance(value, str) or value not in allowed:
            raise GridError(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        return value

    return check


def _int_range(name: str, lo: int, hi: int) -> Callable[[object], int]:
    def check(value: object) -> int:
        if isinstance(value, str):
            try:
                value = int(value)
            except ValueError:
                raise GridError(f"{name}: {value!r} is not an integer") from None
        if isinstance(value, bool) or not isinstance(value, int):
            raise GridError(f"{name}: {value!r} is not an integer")
        if not lo <= value <= hi:
            raise GridError(f"{name}: {value} is outside the allowed range {lo}..{hi}")
        return value

    return check


def _fraction(name: str) -> Callable[[object], float]:
    def check(value: object) -> float:
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                raise GridError(f"{name}: {value!r} is not a number") from None
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
        ):
            raise GridError(f"{name}: {value!r} is not a finite number")
        if not 0.0 <= value < 1.0:
            raise GridError(f"{name}: {value:g} is outside the allowed range [0, 1)")
        return float(value)

    return check


def _path(value: object) -> str:
    value = _choice("path", PATHS)(value)
    if value == "ckks" and not _ckks_available():
        raise GridError("path: 'ckks' is not available in this build (node.ckks is missing)")
    return value


AXES: dict[str, Callable[[object], object]] = {
    "clients": _int_range("clients", 3, MAX_CLIENTS),
    "dim": _int_range("dim", 1, MAX_DIM),
    "bits": _int_range("bits", 1, 62),
    "dropout": _fraction("dropout"),
    "drop_stage": _choice("drop_stage", DROP_STAGES),
    "graph": _choice("graph", GRAPHS),
    "path": _path,
    "dp": _choice("dp", DP_MODES),
}
DEFAULTS: dict[str, list] = {
    "clients": [100],
    "dim": [100_000],
    "bits": [32],
    "dropout": [0.0],
    "drop_stage": ["masked-input"],
    "graph": ["harary"],
    "path": ["masking"],
    "dp": ["off"],
}
SCALARS: dict[str, Callable[[object], object]] = {
    "repeat": _int_range("repeat", 1, 1000),
    "workers": _int_range("workers", 1, 256),
    "corrupt_fraction": _fraction("corrupt_fraction"),
    "trace_memory": lambda v: _bool("trace_memory", v),
}


def _bool(name: str, value: object) -> bool:
    if not isinstance(value, bool):
        raise GridError(f"{name}: {value!r} is not true or false")
    return value


def _axis_values(name: str, raw: object) -> list:
    values = raw if isinstance(raw, list) else [raw]
    if not values:
        raise GridError(f"{name}: the list is empty")
    check = AXES[name]
    out = []
    for v in values:
        v = check(v)
        if v not in out:
            out.append(v)
    return out


def build_grid(
    config: dict | None = None,
    overrides: dict | None = None,
    *,
    default_workers: int | None = None,
) -> Grid:
    """Validate a grid (TOML-shaped dict plus flag overrides) into a Grid, or raise GridError."""
    config = dict(config or {})
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    subgrids = config.pop("grid", None)
    known = set(AXES) | set(SCALARS)
    for key in config:
        if key not in known:
            raise GridError(f"{key}: unknown key (allowed: {', '.join(sorted(known | {'grid'}))})")
    top = {**config, **overrides}
    scalars = {
        "repeat": 1,
        "workers": default_workers or os.cpu_count() or 1,
        "corrupt_fraction": 0.05,
        "trace_memory": False,
    }
    for name, check in SCALARS.items():
        if name in top:
            scalars[name] = check(top[name])
    if subgrids is None:
        subgrids = [{}]
    if not isinstance(subgrids, list) or not all(isinstance(g, dict) for g in subgrids):
        raise GridError("grid: must be an array of tables ([[grid]])")
    points: list[Point] = []
    repeats: list[int] = []
    for index, sub in enumerate(subgrids):
        for key in sub:
            if key not in AXES and key != "repeat":
                raise GridError(
                    f"grid[{index}].{key}: unknown key "
                    f"(allowed: {', '.join(sorted([*AXES, 'repeat']))})"
                )
        sub_repeat = scalars["repeat"]
        if "repeat" in sub and "repeat" not in overrides:
            sub_repeat = SCALARS["repeat"](sub["repeat"])
        axes = {}
        for name in AXES:
            # Precedence: flag > sub-grid > top level > default.
            raw = overrides.get(name, sub.get(name, config.get(name, DEFAULTS[name])))
            axes[name] = _axis_values(name, raw)
        for combo in itertools.product(*(axes[name] for name in AXES)):
            point = Point(**dict(zip(AXES, combo, strict=True)))
            if point not in points:
                points.append(point)
                repeats.append(sub_repeat)
    for point in points:
        _check_point(point, scalars["corrupt_fraction"])
    return Grid(points=tuple(points), repeats=tuple(repeats), **scalars)


def _check_point(point: Point, corrupt_fraction: float) -> None:
    """Refuse configurations that cannot run, naming the point."""
    from bench.secagg_bench import bench_threat
    from secagg.errors import ConfigurationError
    from secagg.graph import find_parameters, full_graph_parameters

    if point.path == "ckks":
        from node.ckks import CkksParameterError, choose_parameters

        try:
            choose_parameters(point.clients, point.bits)
        except CkksParameterError as exc:
            raise GridError(f"{point.key}: no CKKS parameters: {exc}") from None
    if point.path == "masking":
        threat = bench_threat(corrupt_fraction, point.dropout)
        finder = full_graph_parameters if point.graph == "full" else find_parameters
        try:
            finder(point.clients, threat)
        except ConfigurationError as exc:
            raise GridError(f"{point.key}: no SecAgg parameters: {exc}") from None
        if int(point.dropout * point.clients) > point.clients - 3:
            raise GridError(f"{point.key}: dropout {point.dropout:g} leaves fewer than 3 survivors")
    if point.dp == "on":
        from dp.errors import DpError

        try:
            params = _ddg_params(point)
        except (DpError, ValueError) as exc:
            raise GridError(f"{point.key}: no DDG parameters at bits={point.bits}: {exc}") from None
        lane = crypto.mask_dtype(point.bits).itemsize
        if point.clients * params.padded_dim * lane > DP_INPUT_BYTES_LIMIT:
            raise GridError(
                f"{point.key}: dp=on keeps n x d' encoded inputs in memory "
                f"({point.clients * params.padded_dim * lane / 2**30:.1f} GiB > "
                f"{DP_INPUT_BYTES_LIMIT / 2**30:.0f} GiB)"
            )


def _ddg_params(point: Point):
    from dp.planning import ddg_params_for

    return ddg_params_for(
        noise_multiplier=1.0, clients=point.clients, bits=point.bits, clip=1.0, dim=point.dim
    )


# ---------------------------------------------------------------------------
# Physical limits, measured in this process


def measure_add_rate(dim: int, bits: int, repeats: int = 5) -> float:
    """numpy in-place add of two `dim`-lane vectors (capped at 2^24 lanes): lanes/s, best of `repeats`."""
    n = max(1, min(dim, 1 << 24))
    dtype = crypto.mask_dtype(bits)
    acc = np.zeros(n, dtype=dtype)
    x = np.full(n, 7, dtype=dtype)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.add(acc, x, out=acc)
        best = min(best, time.perf_counter() - t0)
    return n / max(best, 1e-9)


def _rss_reset() -> int:
    """Reset the kernel's peak-RSS mark for this process (Linux); return the current RSS in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        pass
    return _proc_status("VmRSS")


def _proc_status(field: str) -> int:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


# ---------------------------------------------------------------------------
# One repeat of one point


def _make_inputs(point: Point):
    """Random lanes mod 2^b (dp=off), or every participant's dp.encode output (dp=on)."""
    if point.dp == "off":
        return RandomInputs(point.clients, point.dim, point.bits), point.dim, None, None, None
    from dp import CsprngSource, encode

    params = _ddg_params(point)
    round_seed = crypto.random_bytes(32)
    rng = CsprngSource()
    inputs: dict[int, np.ndarray] = {}
    times = []
    shape_rng = np.random.default_rng()  # test data only: not privacy-relevant
    for u in range(1, point.clients + 1):
        x = shape_rng.standard_normal(point.dim)
        x *= 0.9 / max(float(np.linalg.norm(x)), 1e-12)
        t0 = time.perf_counter()
        inputs[u] = encode(x, params, round_seed, rng)
        times.append(time.perf_counter() - t0)
    return inputs, params.padded_dim, params, round_seed, statistics.fmean(times)


def run_point(
    point: Point, *, workers: int = 1, corrupt_fraction: float = 0.05, trace_memory: bool = False
) -> dict:
    """Run one round of `point`; return one JSON-ready row (see CSV_COLUMNS)."""
    if point.path == "ckks":
        return _run_ckks_point(point, workers=workers)
    from bench.secagg_bench import _choose, _masking_rate, bench_threat, mean

    lane = crypto.mask_dtype(point.bits).itemsize
    keystream = crypto.measure_keystream_rate(total_bytes=64 << 20)
    row: dict = {**dataclasses.asdict(point), "key": point.key, "lane_bytes": lane}
    inputs, secagg_dim, params, round_seed, dp_encode_seconds = _make_inputs(point)
    add_rate = measure_add_rate(secagg_dim, point.bits)
    masking = _masking_rate(secagg_dim, point.bits)

    dropped = _choose(sorted(inputs), int(point.dropout * point.clients))
    threat = bench_threat(corrupt_fraction, point.dropout)
    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    baseline_rss = _rss_reset()
    try:
        t0 = time.perf_counter()
        result = run_simulation(
            inputs,
            bits=point.bits,
            graph=point.graph,
            threat=threat,
            dropouts={u: point.drop_stage for u in dropped},
            map_function=pool.map if pool else None,
            workers=workers,
        )
        round_seconds = time.perf_counter() - t0
    finally:
        if pool:
            pool.shutdown()
    peak_rss = _proc_status("VmHWM")
    traced_peak = aggregator_heap = None
    if trace_memory:
        traced_peak, aggregator_heap = _traced_memory(
            inputs, point, threat, {u: point.drop_stage for u in dropped}, workers
        )

    u2 = set(result.survivor_sets.get(2, ()))
    u3 = set(result.survivor_sets.get(3, ()))
    masks_removed = len(u3)
    if result.server is not None and getattr(result.server, "graph", None) is not None:
        graph = result.server.graph
        masks_removed += sum(len(set(graph.neighbours(v)) & u3) for v in u2 - u3)

    # Plaintext baseline: the same surviving inputs summed with no protection.
    acc = np.zeros(secagg_dim, dtype=crypto.mask_dtype(point.bits))
    plain = 0.0
    for u in sorted(u3):
        x = np.asarray(inputs[u], dtype=acc.dtype)  # generation is not timed
        t0 = time.perf_counter()
        np.add(acc, x, out=acc)
        plain += time.perf_counter() - t0
    t0 = time.perf_counter()
    crypto.reduce_mod(acc, point.bits)
    plain += time.perf_counter() - t0

    dp_decode_seconds = None
    if params is not None and result.released is not None:
        from dp import decode

        t0 = time.perf_counter()
        decode(result.released, params, round_seed, len(u3))
        dp_decode_seconds = time.perf_counter() - t0

    totals = result.participant_totals()
    mask_times = result.participant_seconds.get("masked-input", {}).values()
    k = result.k or 0
    participant_limit = (k + 1) * secagg_dim * lane / keystream
    aggregator_limit = len(u3) * secagg_dim / add_rate + masks_removed * secagg_dim * lane / (
        keystream * max(1, min(workers, os.cpu_count() or 1))
    )
    row.update(
        {
            "secagg_dim": secagg_dim,
            "k": result.k,
            "t": result.t,
            "dropped": len(dropped),
            "survivors": len(u3),
            "correct": bool(result.correct),
            "aborted": result.server_abort.reason.value if result.server_abort else None,
            "participant_seconds_mean": mean(totals.values()),
            "participant_seconds_max": max(totals.values(), default=0.0),
            "participant_mask_seconds": mean(mask_times),
            "participant_stage_seconds": {
                s: statistics.fmean(v.values()) for s, v in result.participant_seconds.items() if v
            },
            "aggregator_seconds": sum(result.aggregator_seconds.values()),
            "aggregator_stage_seconds": dict(result.aggregator_seconds),
            "round_seconds": round_seconds,
            "plaintext_sum_seconds": plain,
            "dp_encode_seconds": dp_encode_seconds,
            "dp_decode_seconds": dp_decode_seconds,
            "bytes_up_per_participant": mean(result.bytes_up.values()),
            "bytes_down_per_participant": mean(result.bytes_down.values()),
            "peak_rss_bytes": peak_rss,
            "baseline_rss_bytes": baseline_rss,
            "traced_peak_bytes": traced_peak,
            "aggregator_heap_bytes": aggregator_heap,
            "keystream_bytes_per_second": keystream,
            "add_elements_per_second": add_rate,
            "masking_bytes_per_second": masking,
            "masks_removed": masks_removed,
            "participant_limit_seconds": participant_limit,
            "aggregator_limit_seconds": aggregator_limit,
            "round_limit_seconds": len(u3) * participant_limit + aggregator_limit,
            "workers": workers,
        }
    )
    return row


def _traced_memory(inputs, point: Point, threat, dropouts: dict, workers: int) -> tuple[int, int]:
    """(heap peak of the whole round, heap held by the aggregator when unmasking starts).

    One more, untimed round under tracemalloc (numpy buffers included). The peak
    covers the whole process: aggregator, all simulated participants' protocol
    state and the one participant being served. The aggregator's share is what
    was allocated from secagg/server.py frames and is still held when the
    unmasking requests go out (it then holds everything it will hold, except the
    mask workers' partial sums, `workers` x d lanes, added during unmasking).
    """
    import tracemalloc

    held = [0]

    def snapshot_at_unmasking(stage: str, outgoing: dict) -> dict:
        if stage == "unmasking":
            snap = tracemalloc.take_snapshot().filter_traces(
                [tracemalloc.Filter(True, "*secagg/server.py", all_frames=True)]
            )
            held[0] = sum(stat.size for stat in snap.statistics("filename"))
        return outgoing

    pool = ThreadPoolExecutor(workers) if workers > 1 else None
    tracemalloc.start(32)
    try:
        tracemalloc.reset_peak()
        run_simulation(
            inputs,
            bits=point.bits,
            graph=point.graph,
            threat=threat,
            dropouts=dropouts,
            map_function=pool.map if pool else None,
            workers=workers,
            tamper=snapshot_at_unmasking,
        )
        return tracemalloc.get_traced_memory()[1], held[0]
    finally:
        tracemalloc.stop()
        if pool:
            pool.shutdown()


def _run_ckks_point(point: Point, *, workers: int) -> dict:
    """path=ckks: the same inputs through node.ckks.simulate_ckks_round (TenSEAL CKKS)."""
    from bench.secagg_bench import _choose, mean
    from node.ckks import simulate_ckks_round

    inputs, secagg_dim, params, round_seed, dp_encode_seconds = _make_inputs(point)
    dropped = _choose(list(range(1, point.clients + 1)), int(point.dropout * point.clients))
    t0 = time.perf_counter()
    baseline_rss = _rss_reset()
    result = simulate_ckks_round(inputs, point.bits, dropouts=dropped, workers=workers)
    round_seconds = time.perf_counter() - t0
    peak_rss = _proc_status("VmHWM")
    survivors = [u for u in range(1, point.clients + 1) if u not in set(dropped)]
    dtype = crypto.mask_dtype(point.bits)
    expected = np.zeros(secagg_dim, dtype=dtype)
    plain = 0.0
    for u in survivors:
        x = np.asarray(inputs[u], dtype=dtype)
        t1 = time.perf_counter()
        np.add(expected, x, out=expected)
        plain += time.perf_counter() - t1
    crypto.reduce_mod(expected, point.bits)
    correct = result.released is not None and np.array_equal(
        np.asarray(result.released, dtype=dtype), expected
    )
    dp_decode_seconds = None
    if params is not None and result.released is not None:
        from dp import decode

        t1 = time.perf_counter()
        decode(np.asarray(result.released, dtype=dtype), params, round_seed, len(survivors))
        dp_decode_seconds = time.perf_counter() - t1
    enc = list(result.encrypt_seconds.values())
    return {
        **dataclasses.asdict(point),
        "key": point.key,
        "secagg_dim": secagg_dim,
        "lane_bytes": dtype.itemsize,
        "dropped": len(dropped),
        "survivors": len(survivors),
        "correct": bool(correct),
        "aborted": type(result.error).__name__ if result.error else None,
        "participant_seconds_mean": mean(enc),
        "participant_seconds_max": max(enc, default=0.0),
        "aggregator_seconds": result.aggregate_seconds,
        "committee_decrypt_seconds": dict(result.decrypt_seconds),
        "setup_seconds": result.setup_seconds,
        "round_seconds": round_seconds,
        "plaintext_sum_seconds": plain,
        "dp_encode_seconds": dp_encode_seconds,
        "dp_decode_seconds": dp_decode_seconds,
        "bytes_up_per_participant": mean(result.bytes_up.values()),
        "peak_rss_bytes": peak_rss,
        "baseline_rss_bytes": baseline_rss,
        "workers": workers,
    }


# ---------------------------------------------------------------------------
# Results files


def read_results(out: Path) -> list[dict]:
    """Every complete row of out/results.jsonl (a torn last line is ignored)."""
    path = Path(out) / RESULTS_JSONL
    if not path.exists():
        return []
    rows = []
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            line = line.strip()
            if not line:
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # interrupted mid-write
    return rows


def _repair(out: Path, rows: list[dict]) -> None:
    """Make results.jsonl and results.csv hold exactly `rows` (after an interruption)."""
    tmp = out / (RESULTS_JSONL + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    tmp.replace(out / RESULTS_JSONL)
    tmp = out / (RESULTS_CSV + ".tmp")
    with tmp.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow(_csv_row(row))
    tmp.replace(out / RESULTS_CSV)


def _csv_row(row: dict) -> dict:
    return {c: ("" if row.get(c) is None else row.get(c)) for c in CSV_COLUMNS}


def _append(out: Path, row: dict) -> None:
    with (out / RESULTS_JSONL).open("a", encoding="utf-8") as fh:
        fh.write(json.dumps(row) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    csv_path = out / RESULTS_CSV
    new = not csv_path.exists() or csv_path.stat().st_size == 0
    with csv_path.open("a", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, extrasaction="ignore")
        if new:
            writer.writeheader()
        writer.writerow(_csv_row(row))


def machine_info() -> dict:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import Crypto

    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pycryptodome": Crypto.__version__,
        "load_average": os.getloadavg(),
    }


def run_sweep(
    grid: Grid,
    out: Path,
    *,
    progress: bool = True,
    command: str | None = None,
    runner: Callable[..., dict] = run_point,
) -> list[dict]:
    """Run every (point, repeat) of `grid` not yet in out/results.jsonl; return all rows."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = read_results(out)
    _repair(out, rows)
    done = {(r["key"], r["repeat"]) for r in rows}
    todo = [(p, r) for p, r in grid.runs() if (p.key, r) not in done]
    with (out / RUNS_JSONL).open("a", encoding="utf-8") as fh:
        fh.write(
            json.dumps(
                {
                    "started_at": time.time(),
                    "command": command,
                    "points": len(grid.points),
                    "repeat": grid.repeat,
                    "todo": len(todo),
                    "already_done": len(grid.runs()) - len(todo),
                    "machine": machine_info(),
                }
            )
            + "\n"
        )
    with _progress(progress, len(todo)) as advance:
        for point, repeat in todo:
            advance(point.key, repeat, grid.repeat_of(grid.points.index(point)))
            row = runner(
                point,
                workers=grid.workers,
                corrupt_fraction=grid.corrupt_fraction,
                trace_memory=grid.trace_memory,
            )
            row["repeat"] = repeat
            row["finished_at"] = time.time()
            _append(out, row)
            rows.append(row)
        advance(None, 0, 0)
    return rows


class _progress:
    """rich progress bar with an ETA (or nothing, for tests and pipes)."""

    def __init__(self, enabled: bool, total: int) -> None:
        self._enabled, self._total = enabled, total
        self._bar = None

    def __enter__(self) -> Callable[[str | None, int, int], None]:
        if self._enabled and self._total:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                BarColumn(bar_width=24),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                TextColumn("{task.description}"),
            )
            self._bar.start()
            self._task = self._bar.add_task("", total=self._total)
        self._started = False
        return self._advance

    def _advance(self, key: str | None, repeat: int, of: int) -> None:
        if self._bar is None:
            return
        if self._started:
            self._bar.advance(self._task)
        self._started = True
        if key is not None:
            short = key.replace(";path=masking", "").replace("@masked-input", "")
            short = short.replace(";dp=off", "").replace(";", " ")
            self._bar.update(self._task, description=f"{short} [{repeat + 1}/{of}]")

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.stop()


# ---------------------------------------------------------------------------
# Summaries (shared with bench.plot)

METRICS = (
    "participant_seconds_mean",
    "aggregator_seconds",
    "round_seconds",
    "plaintext_sum_seconds",
    "dp_encode_seconds",
    "dp_decode_seconds",
    "bytes_up_per_participant",
    "peak_rss_bytes",
    "traced_peak_bytes",
    "aggregator_heap_bytes",
    "participant_mask_seconds",
)
LIMITS = ("participant_limit_seconds", "aggregator_limit_seconds", "round_limit_seconds")


def summarise(rows: Iterable[dict]) -> list[dict]:
    """One entry per point: its parameters, then median/min/max of each metric over repeats."""
    by_key: dict[str, list[dict]] = {}
    for row in rows:
        by_key.setdefault(row["key"], []).append(row)
    out = []
    for key, group in by_key.items():
        first = group[0]
        entry = {f.name: first.get(f.name) for f in dataclasses.fields(Point)}
        entry.update(
            key=key,
            repeats=len(group),
            correct=all(r.get("correct") for r in group),
            k=first.get("k"),
            t=first.get("t"),
            secagg_dim=first.get("secagg_dim"),
        )
        for m in METRICS + LIMITS + ("keystream_bytes_per_second", "masking_bytes_per_second"):
            values = [r[m] for r in group if r.get(m) is not None]
            if values:
                entry[m] = statistics.median(values)
                entry[m + "_min"], entry[m + "_max"] = min(values), max(values)
        out.append(entry)
    return out


def print_summary(summary: list[dict]) -> None:
    from rich.console import Console
    from rich.table import Table

    def span(e: dict, m: str, scale: float = 1.0, fmt: str = "{:.3g}") -> str:
        if m not in e:
            return "-"
        mid, lo, hi = (e[m] * scale, e[m + "_min"] * scale, e[m + "_max"] * scale)
        text = fmt.format(mid)
        if e["repeats"] > 1:
            text += f" ({fmt.format(lo)}–{fmt.format(hi)})"
        return text

    table = Table(title="sweep: median (min–max) over repeats; limit = measured physical limit")
    for col in (
        "n", "d", "b", "drop", "graph", "dp", "k", "ok",
        "participant s", "limit", "aggregator s", "limit", "round s", "limit",
        "plaintext s", "round/plain", "up kB", "peak RSS MiB",
    ):  # fmt: skip
        table.add_column(col, justify="right")
    for e in summary:
        ratio = (
            f"{e['round_seconds'] / e['plaintext_sum_seconds']:.0f}x"
            if e.get("plaintext_sum_seconds")
            else "-"
        )
        table.add_row(
            f"{e['clients']}",
            f"{e['dim']:.0e}",
            f"{e['bits']}",
            f"{e['dropout']:g}",
            e["graph"],
            e["dp"],
            str(e.get("k")),
            "yes" if e["correct"] else "NO",
            span(e, "participant_seconds_mean"),
            span(e, "participant_limit_seconds", fmt="{:.2g}"),
            span(e, "aggregator_seconds"),
            span(e, "aggregator_limit_seconds", fmt="{:.2g}"),
            span(e, "round_seconds"),
            span(e, "round_limit_seconds", fmt="{:.2g}"),
            span(e, "plaintext_sum_seconds", fmt="{:.2g}"),
            ratio,
            span(e, "bytes_up_per_participant", 1e-3, "{:.0f}"),
            span(e, "peak_rss_bytes", 2**-20, "{:.0f}"),
        )
    Console(width=None if sys.stdout.isatty() else 220).print(table)


# ---------------------------------------------------------------------------
# Command line


def _comma_list(parse: Callable[[str], object]) -> Callable[[str], list]:
    def parse_list(text: str) -> list:
        items = [t.strip() for t in text.split(",")]
        if not all(items):
            raise argparse.ArgumentTypeError(f"{text!r} has an empty item")
        return [parse(t) for t in items]

    return parse_list


def _choice_arg(allowed: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in allowed:
            raise argparse.ArgumentTypeError(f"{text!r} is not one of {', '.join(allowed)}")
        return text

    return parse


def _path_arg(text: str) -> str:
    try:
        return _path(text)
    except GridError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("path: ")) from None


def _dp_arg(text: str) -> str:
    return _choice_arg(DP_MODES)(text)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "sweep",
        help="a resumable grid of SecAgg(+) rounds (results as JSON lines and CSV)",
        description="Run a grid of simulated rounds; comma lists give the axes "
        "(e.g. --clients 10,20 --dim 1000,10000 --dropout 0,0.1).",
    )
    p.add_argument("--config", metavar="TOML", help="grid file (flags override its values)")
    p.add_argument("--clients", type=_comma_list(int_in(3, MAX_CLIENTS)))
    p.add_argument("--dim", type=_comma_list(int_in(1, MAX_DIM)))
    p.add_argument("--bits", type=_comma_list(int_in(1, 62)))
    p.add_argument("--dropout", type=_comma_list(float_in(0.0, 1.0, False, True)))
    p.add_argument("--drop-stage", type=_comma_list(_choice_arg(DROP_STAGES)))
    p.add_argument("--graph", type=_comma_list(_choice_arg(GRAPHS)))
    p.add_argument("--path", type=_comma_list(_path_arg))
    p.add_argument("--dp", type=_comma_list(_dp_arg), help="on,off")
    p.add_argument("--repeat", type=int_in(1, 1000))
    p.add_argument("--workers", type=int_in(1, 256), help="aggregator threads (default: all cores)")
    p.add_argument("--corrupt-fraction", type=float_in(0.0, 1.0, False, True))
    p.add_argument(
        "--trace-memory",
        action="store_true",
        default=None,
        help="also run one untimed round per repeat under tracemalloc (heap peak)",
    )
    p.add_argument(
        "--out",
        metavar="DIR",
        default="bench/out/sweep",
        help="results directory (default %(default)s)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=run_command)


def load_config(path: str) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise GridError(f"{path}: cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise GridError(f"{path}: not valid TOML: {exc}") from None


def run_command(args: argparse.Namespace) -> int:
    prog = "blindsum bench sweep"
    overrides = {
        "clients": args.clients,
        "dim": args.dim,
        "bits": args.bits,
        "dropout": args.dropout,
        "drop_stage": args.drop_stage,
        "graph": args.graph,
        "path": args.path,
        "dp": args.dp,
        "repeat": args.repeat,
        "workers": args.workers,
        "corrupt_fraction": args.corrupt_fraction,
        "trace_memory": args.trace_memory,
    }
    try:
        config = load_config(args.config) if args.config else {}
        grid = build_grid(config, overrides)
    except GridError as exc:
        where = f"{args.config}: " if args.config and not str(exc).startswith(args.config) else ""
        print(f"{prog}: error: {where}{exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        print(f"{prog}: error: --out {out} exists and is not a directory", file=sys.stderr)
        return 2
    command = (
        " ".join(["blindsum", "bench", "sweep", *sys.argv[sys.argv.index("sweep") + 1 :]])
        if "sweep" in sys.argv
        else None
    )
    rows = run_sweep(
        grid, out, progress=not args.no_progress and sys.stderr.isatty(), command=command
    )
    wanted = {p.key for p in grid.points}
    summary = [e for e in summarise(rows) if e["key"] in wanted]
    if args.json:
        print(json.dumps(summary))
    else:
        print_summary(summary)
        print(f"results: {out / RESULTS_JSONL}, {out / RESULTS_CSV}")
    return 0 if all(e["correct"] for e in summary) else 1
