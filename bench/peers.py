"""`blindsum bench peers`: the same round through Flower's SecAgg+ and through blindsum.

Flower (`flwr` 1.42.0) pins protobuf < 7, and blindsum's generated code needs
protobuf >= 7.35.1, so Flower never goes into blindsum's environment: its side
runs in a separate virtualenv (default `.venv-peers` at the repository root,
created on demand with `python -m venv` + `pip install flwr==1.42.0 numpy`),
as a subprocess that runs this same file with `--flower-driver`. The driver
imports Flower and calls its own `SecAggPlusWorkflow` (server) and
`secaggplus_mod` (client mod, wrapped around a `ClientApp`) in one process,
through a small in-process `Grid` that hands every message to the addressed
node as serialized protobuf bytes (Flower's own `message_to_proto` /
`message_from_proto`), like the network would. Participants run serially, as
in blindsum's simulator; a participant's time is its deserialize + mod/app +
serialize time, and the aggregator's time is the rest of the workflow's time.

blindsum's side runs `run_secagg_bench` at the same n, d and dropout (the
dropped participants leave before sending their masked input, in both), in
the same command, and both are compared with a plaintext sum of the same
number of vectors. Only the standard library is imported at module level, so
the driver runs in the Flower venv without blindsum installed.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

FLOWER_REQUIREMENT = "flwr==1.42.0"
DEFAULT_VENV = Path(__file__).resolve().parents[1] / ".venv-peers"
DRIVER_TIMEOUT_S = 3600

# What Flower's SecAgg+ (flwr 1.42.0) does not provide, read from its source
# (flwr/common/secure_aggregation/secaggplus_utils.py, flwr/client/mod/
# secure_aggregation/secaggplus_mod.py), so the ratios are read honestly.
FLOWER_DOES_NOT_PROVIDE = (
    "a cryptographic mask generator: pseudo_rand_gen seeds numpy's Mersenne Twister "
    "(RandomState) with a 32-bit XOR-fold of the seed and draws randint(0, mod-1), "
    "a non-uniform mask; blindsum expands masks with AES-128-CTR keyed by HKDF",
    "protection against an aggregator that lies about dropouts: no consistency-check "
    "round, and a client's _unmask answers overlapping active and dead lists (it can be "
    "made to give up both shares of a peer); blindsum signs U3 and refuses overlaps",
    "DP noise inside the aggregation: the masked sum carries no distributed discrete "
    "Gaussian noise (blindsum's DDG encode/decode is separate and timed in `bench sweep`)",
)


# ---------------------------------------------------------------------------
# Flower side (runs inside the Flower virtualenv: flwr and numpy only)


def flower_round(clients: int, dim: int, dropout: float, neighbours: int, threshold: int) -> dict:
    """One SecAgg+ round through Flower's own workflow and client mod, in this process."""
    import logging

    import numpy as np
    from flwr.app import ConfigRecord, Context, Message, RecordDict
    from flwr.client import ClientApp, NumPyClient
    from flwr.client.mod import secaggplus_mod
    from flwr.common import ndarrays_to_parameters, parameters_to_ndarrays
    from flwr.common.serde import message_from_proto, message_to_proto
    from flwr.compat.common import recorddict_compat as compat
    from flwr.proto.message_pb2 import Message as ProtoMessage
    from flwr.server import ServerConfig
    from flwr.server.client_manager import SimpleClientManager
    from flwr.server.compat.grid_client_proxy import GridClientProxy
    from flwr.server.compat.legacy_context import LegacyContext
    from flwr.server.strategy import FedAvg
    from flwr.server.workflow import SecAggPlusWorkflow
    from flwr.server.workflow.constant import MAIN_CONFIGS_RECORD, MAIN_PARAMS_RECORD, Key
    from flwr.serverapp.grid import Grid
    from flwr.supercore.task_identity import TaskIdentity

    logging.getLogger("flwr").setLevel(logging.ERROR)
    # Messages created outside a SuperLink need a task identity (normally set by flwr's runtime).
    TaskIdentity.run_id, TaskIdentity.node_id, TaskIdentity.task_id = 1, 0, 1

    rng = np.random.default_rng()
    ids = list(range(1001, 1001 + clients))
    vectors = {u: rng.uniform(-1.0, 1.0, dim).astype(np.float32) for u in ids}
    dropped = {int(u) for u in rng.choice(ids, int(dropout * clients), replace=False)}

    class BenchClient(NumPyClient):
        def __init__(self, node: int) -> None:
            self.node = node

        def fit(self, parameters, config):
            return [vectors[self.node]], 1, {}

    app = ClientApp(
        client_fn=lambda context: BenchClient(context.node_id).to_client(), mods=[secaggplus_mod]
    )
    contexts = {
        u: Context(run_id=1, node_id=u, node_config={}, state=RecordDict(), run_config={})
        for u in ids
    }
    participant = dict.fromkeys(ids, 0.0)
    up = dict.fromkeys(ids, 0)
    down = dict.fromkeys(ids, 0)
    stages = [0]

    class InProcessGrid(Grid):
        """Delivers each message as protobuf bytes to the addressed node, serially."""

        def set_run(self, run) -> None:
            self._run = run

        @property
        def run(self):
            return self._run

        def create_message(self, content, message_type, dst_node_id, group_id, ttl=None):
            return Message(
                content=content,
                dst_node_id=dst_node_id,
                message_type=message_type,
                group_id=group_id,
                ttl=ttl,
            )

        def get_node_ids(self):
            return list(ids)

        def push_messages(self, messages):
            raise NotImplementedError("the workflow only uses send_and_receive")

        def pull_messages(self, message_ids):
            raise NotImplementedError("the workflow only uses send_and_receive")

        def send_and_receive(self, messages, *, timeout=None):
            stage = stages[0]  # 0 setup, 1 share keys, 2 collect masked vectors, 3 unmask
            stages[0] += 1
            replies = []
            for msg in messages:
                node = msg.metadata.dst_node_id
                if node in dropped and stage >= 2:
                    continue  # gone before sending its masked vector
                data = message_to_proto(msg).SerializeToString()
                down[node] += len(data)
                t0 = time.perf_counter()
                request = message_from_proto(ProtoMessage.FromString(data))
                reply = app(request, contexts[node])
                out = message_to_proto(reply).SerializeToString()
                participant[node] += time.perf_counter() - t0
                up[node] += len(out)
                replies.append(message_from_proto(ProtoMessage.FromString(out)))
            return replies

    grid = InProcessGrid()
    manager = SimpleClientManager()
    for u in ids:
        manager.register(GridClientProxy(u, grid, 1))
    strategy = FedAvg(
        fraction_fit=1.0,
        fraction_evaluate=0.0,
        min_fit_clients=clients,
        min_available_clients=clients,
    )
    context = LegacyContext(
        Context(run_id=1, node_id=0, node_config={}, state=RecordDict(), run_config={}),
        config=ServerConfig(num_rounds=1),
        strategy=strategy,
        client_manager=manager,
    )
    context.state.config_records[MAIN_CONFIGS_RECORD] = ConfigRecord(
        {Key.CURRENT_ROUND: 1, Key.START_TIME: time.time()}
    )
    context.state.array_records[MAIN_PARAMS_RECORD] = compat.parameters_to_arrayrecord(
        ndarrays_to_parameters([np.zeros(dim, dtype=np.float32)]), keep_input=True
    )
    workflow = SecAggPlusWorkflow(num_shares=neighbours + 1, reconstruction_threshold=threshold)
    t0 = time.perf_counter()
    workflow(grid, context)
    round_seconds = time.perf_counter() - t0
    released = parameters_to_ndarrays(
        compat.arrayrecord_to_parameters(context.state.array_records[MAIN_PARAMS_RECORD], True)
    )[0]
    survivors = [u for u in ids if u not in dropped]
    expected = np.mean([vectors[u] for u in survivors], axis=0)
    error = float(np.max(np.abs(released - expected))) if released.shape == expected.shape else None
    import flwr

    return {
        "system": "flower",
        "flwr": flwr.__version__ if hasattr(flwr, "__version__") else FLOWER_REQUIREMENT,
        "clients": clients,
        "dim": dim,
        "dropout": dropout,
        "dropped": len(dropped),
        "neighbours": neighbours,
        "threshold": threshold,
        "stages": stages[0],
        "completed": stages[0] == 4 and error is not None,
        "max_abs_error": error,
        "round_seconds": round_seconds,
        "participant_seconds_mean": statistics.fmean(participant.values()),
        "participant_seconds_total": sum(participant.values()),
        "aggregator_seconds": round_seconds - sum(participant.values()),
        "bytes_up_per_participant": statistics.fmean(up[u] for u in ids if u not in dropped),
        "bytes_down_per_participant": statistics.fmean(down.values()),
    }


# ---------------------------------------------------------------------------
# blindsum side


class FlowerUnavailable(RuntimeError):
    """Flower's side could not run; the message says why."""


def ensure_flower_venv(venv: Path, *, install: bool = True, quiet: bool = False) -> Path:
    """The venv's python, creating the venv and installing flwr into it if needed."""
    python = venv / "bin" / "python"
    if python.exists() and _has_flwr(python):
        return python
    if not install:
        raise FlowerUnavailable(
            f"{venv} has no {FLOWER_REQUIREMENT} (run without --no-install to create it)"
        )
    if not quiet:
        print(f"creating {venv} with {FLOWER_REQUIREMENT} (once) ...", file=sys.stderr)
    steps = [
        [sys.executable, "-m", "venv", str(venv)],
        [str(python), "-m", "pip", "install", "-q", FLOWER_REQUIREMENT, "numpy"],
    ]
    for cmd in steps:
        if cmd[0] == str(python) or not python.exists():
            done = subprocess.run(cmd, capture_output=True, text=True)
            if done.returncode:
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise FlowerUnavailable(f"{' '.join(cmd[:4])} failed: {' | '.join(tail)}")
    if not _has_flwr(python):
        raise FlowerUnavailable(f"{FLOWER_REQUIREMENT} did not import in {venv}")
    return python


def _has_flwr(python: Path) -> bool:
    done = subprocess.run(
        [str(python), "-c", "import flwr.server.workflow, flwr.client.mod"],
        capture_output=True,
    )
    return done.returncode == 0


def run_flower(python: Path, **params) -> dict:
    """Flower's round in its venv; raises FlowerUnavailable with Flower's own error."""
    done = subprocess.run(
        [str(python), str(Path(__file__).resolve()), "--flower-driver", json.dumps(params)],
        capture_output=True,
        text=True,
        timeout=DRIVER_TIMEOUT_S,
        env={**os.environ, "PYTHONPATH": ""},
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        tail = done.stderr.strip().splitlines()[-3:]
        raise FlowerUnavailable(f"Flower driver failed ({done.returncode}): {' | '.join(tail)}")
    return json.loads(lines[-1])


def plaintext_sum_seconds(clients: int, dim: int, bits: int = 32) -> float:
    """Summing `clients` vectors of `dim` uint32 lanes with no protection (generation not timed)."""
    import numpy as np

    acc = np.zeros(dim, dtype=np.uint32 if bits <= 32 else np.uint64)
    x = np.random.default_rng().integers(0, 1 << min(bits, 32), dim, dtype=acc.dtype)
    total = 0.0
    for _ in range(clients):
        t0 = time.perf_counter()
        np.add(acc, x, out=acc)
        total += time.perf_counter() - t0
    return total


def _median_rows(rows: list[dict]) -> dict:
    out = dict(rows[-1])
    for key in ("aggregator_seconds", "participant_seconds_mean", "round_seconds"):
        values = [r[key] for r in rows]
        out[key] = statistics.median(values)
        out[key + "_min"], out[key + "_max"] = min(values), max(values)
    out["repeats"] = len(rows)
    if "correct" in out:  # blindsum: every repeat exact
        out["correct"] = all(r["correct"] for r in rows)
    if "completed" in out:  # Flower: every repeat finished; worst error over repeats
        out["completed"] = all(r["completed"] for r in rows)
        errors = [r["max_abs_error"] for r in rows if r["max_abs_error"] is not None]
        out["max_abs_error"] = max(errors) if errors else None
    return out


def compare(
    *,
    clients: int,
    dim: int,
    dropout: float,
    neighbours: list[int | str],
    threshold: int | None,
    repeat: int,
    workers: int,
    venv: Path,
    install: bool,
    progress=print,
) -> dict:
    """Both sides, `repeat` times each, interleaved; returns medians and the Flower error, if any."""
    from bench.secagg_bench import run_secagg_bench

    bs_rows, fl_rows = [], {}
    flower_error = None
    python = None
    try:
        python = ensure_flower_venv(venv, install=install)
    except FlowerUnavailable as exc:
        flower_error = str(exc)
    plain = []
    for r in range(repeat):
        progress(f"[{r + 1}/{repeat}] blindsum SecAgg+ n={clients} d={dim} dropout={dropout:g}")
        bs = run_secagg_bench(
            clients=clients, dim=dim, bits=32, dropout=dropout, graph="harary", workers=workers
        )
        bs_rows.append(bs)
        plain.append(plaintext_sum_seconds(clients - bs["dropped"], dim))
        if python is None:
            continue
        ks = []
        for nb in neighbours:
            k = bs["k"] if nb == "k" else int(nb)
            k = min(k + (k % 2), clients - 1)  # Flower wants an odd share count (k + 1)
            if k not in ks:
                ks.append(k)
        for k in ks:
            t = threshold or (k + 1) // 2 + 1
            progress(f"[{r + 1}/{repeat}] Flower SecAgg+ neighbours={k} threshold={t}")
            try:
                fl = run_flower(
                    python, clients=clients, dim=dim, dropout=dropout, neighbours=k, threshold=t
                )
            except (FlowerUnavailable, subprocess.TimeoutExpired) as exc:
                flower_error = str(exc)
                python = None
                break
            fl_rows.setdefault(k, []).append(fl)
    blindsum = _median_rows(bs_rows)
    return {
        "clients": clients,
        "dim": dim,
        "dropout": dropout,
        "repeat": repeat,
        "plaintext_sum_seconds": statistics.median(plain),
        "blindsum": blindsum,
        "flower": [_median_rows(rows) for _, rows in sorted(fl_rows.items())],
        "flower_error": flower_error,
        "flower_does_not_provide": list(FLOWER_DOES_NOT_PROVIDE),
    }


def print_comparison(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 200)
    b = report["blindsum"]
    plain = report["plaintext_sum_seconds"]

    def cell(r: dict, key: str) -> str:
        text = f"{r[key]:.3f}"
        if r.get("repeats", 1) > 1:
            text += f" ({r[key + '_min']:.3f}–{r[key + '_max']:.3f})"
        return text

    table = Table(
        title=f"SecAgg+ round, n={report['clients']}, d={report['dim']:,}, "
        f"{report['dropout']:.0%} dropped before their masked input; median (min–max) of "
        f"{report['repeat']}, participants serial in one process"
    )
    for col in (
        "system", "neighbours k", "aggregator s", "participant s (mean)", "round s",
        "up kB/participant", "aggregator: Flower/blindsum", "round: Flower/blindsum", "round / plaintext",
    ):  # fmt: skip
        table.add_column(col, justify="right")
    table.add_row(
        "plaintext sum (no protection)", "-", f"{plain:.3g}", "0", f"{plain:.3g}",
        f"{report['dim'] * 4 / 1e3:.0f}", "", "", "1x",
    )  # fmt: skip
    table.add_row(
        f"blindsum SecAgg+ (t={b['t']})", str(b["k"]), cell(b, "aggregator_seconds"),
        cell(b, "participant_seconds_mean"), cell(b, "round_seconds"),
        f"{b['bytes_up_per_participant'] / 1e3:.0f}", "1x", "1x",
        f"{b['round_seconds'] / plain:.0f}x",
    )  # fmt: skip
    for f in report["flower"]:
        table.add_row(
            f"Flower {f['flwr']} SecAgg+ (t={f['threshold']})", str(f["neighbours"]),
            cell(f, "aggregator_seconds"), cell(f, "participant_seconds_mean"),
            cell(f, "round_seconds"), f"{f['bytes_up_per_participant'] / 1e3:.0f}",
            f"{f['aggregator_seconds'] / b['aggregator_seconds']:.1f}x",
            f"{f['round_seconds'] / b['round_seconds']:.1f}x",
            f"{f['round_seconds'] / plain:.0f}x",
        )  # fmt: skip
    console.print(table)
    if report["flower_error"]:
        console.print(f"[bold red]Flower side did not run:[/] {report['flower_error']}")
    console.print(
        f"blindsum correct: {b['correct']}; Flower max |error| vs the true mean: "
        + ", ".join(f"{f['max_abs_error']:.2g} (k={f['neighbours']})" for f in report["flower"])
    )
    console.print("What the Flower run does not provide (so read the ratios with this in mind):")
    for note in report["flower_does_not_provide"]:
        console.print(f"  - {note}")


# ---------------------------------------------------------------------------
# Command line


def _neighbours_list(text: str) -> list[int | str]:
    out: list[int | str] = []
    for item in text.split(","):
        item = item.strip()
        if item == "k":
            out.append("k")
            continue
        try:
            value = int(item)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{item!r} is not an integer or 'k'") from None
        if value < 2:
            raise argparse.ArgumentTypeError(f"{item} is outside the allowed range >= 2")
        out.append(value)
    return out


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    from node.cli_args import float_in, int_in

    p = subparsers.add_parser(
        "peers",
        help="the same SecAgg+ round through Flower (separate venv) and blindsum, side by side",
    )
    p.add_argument("--clients", type=int_in(3, 100_000), default=100)
    p.add_argument("--dim", type=int_in(1, 1 << 31), default=100_000)
    p.add_argument("--dropout", type=float_in(0.0, 1.0, False, True), default=0.1)
    p.add_argument(
        "--neighbours",
        type=_neighbours_list,
        default=[14, "k"],
        help="Flower's neighbour counts, comma list; 'k' = blindsum's own k (default 14,k)",
    )
    p.add_argument("--threshold", type=int_in(2), help="Flower's threshold (default k/2 + 1)")
    p.add_argument("--repeat", type=int_in(1, 100), default=1)
    p.add_argument("--workers", type=int_in(1, 256), default=os.cpu_count() or 1)
    p.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="Flower's virtualenv")
    p.add_argument(
        "--no-install", action="store_true", help="do not create the Flower venv if missing"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--out", metavar="FILE", help="also append the report as a JSON line")
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from bench.secagg_bench import bench_threat
    from secagg.errors import ConfigurationError
    from secagg.graph import find_parameters

    try:
        find_parameters(args.clients, bench_threat(0.05, args.dropout))
    except ConfigurationError as exc:
        print(
            f"blindsum bench peers: error: n={args.clients}, dropout={args.dropout:g}: {exc}",
            file=sys.stderr,
        )
        return 2
    if int(args.dropout * args.clients) > args.clients - 3:
        print(
            f"blindsum bench peers: error: dropout {args.dropout:g} leaves fewer than 3 survivors",
            file=sys.stderr,
        )
        return 2
    quiet = args.json

    def progress(text: str) -> None:
        if not quiet:
            print(text, file=sys.stderr)

    report = compare(
        clients=args.clients,
        dim=args.dim,
        dropout=args.dropout,
        neighbours=args.neighbours,
        threshold=args.threshold,
        repeat=args.repeat,
        workers=args.workers,
        venv=args.venv,
        install=not args.no_install,
        progress=progress,
    )
    if args.out:
        with open(args.out, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(report) + "\n")
    if args.json:
        print(json.dumps(report))
    else:
        print_comparison(report)
    if not report["blindsum"]["correct"]:
        return 1
    return 1 if report["flower_error"] else 0


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "--flower-driver":
        print(json.dumps(flower_round(**json.loads(sys.argv[2]))))
        sys.exit(0)
    sys.exit("usage: run `blindsum bench peers` (this file's own entry point is Flower's driver)")
