"""`blindsum demo`: a throw-away federation on 127.0.0.1.

Provisions a CA, certificates, signing keys, configs and non-IID data splits
under runs/<timestamp>/, starts the aggregator and N node processes (real gRPC
with mutual TLS), runs R rounds of local training + DDG + SecAgg+, shows a live
view, then prints accuracy per round next to a non-private FedAvg baseline
computed in-process on the same split, and epsilon per node from each node's
own ledger.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import json
import time
from datetime import UTC, datetime
from pathlib import Path

from node.cli_args import float_in, int_in, positive
from node.demo import add_in_memory_arguments, run_in_memory


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "demo", help="run a local federation (aggregator + N nodes over mTLS) and report it"
    )
    p.add_argument("--nodes", type=int_in(3, 50), default=5)
    p.add_argument("--rounds", type=int_in(1, 1000), default=5)
    p.add_argument("--dataset", choices=("digits", "breast_cancer"), default="digits")
    p.add_argument("--model", choices=("logreg", "mlp"), default="logreg")
    p.add_argument("--epsilon", type=positive, default=10.0, help="target epsilon over all rounds")
    p.add_argument("--delta", type=float_in(0.0, 1.0, True, True), default=1e-5)
    p.add_argument("--bits", type=int_in(1, 62), default=16)
    p.add_argument("--path", choices=("masking", "ckks"), default="masking",
                   help="secure aggregation: pairwise masking (default) or CKKS with a "
                        "decryption committee (the first two sites)")  # fmt: skip
    p.add_argument("--kill-node-at-round", type=int_in(1, 1000), default=None, metavar="R",
                   help="kill one node mid-round R to show dropout recovery")  # fmt: skip
    p.add_argument("--runs-dir", type=Path, default=Path("runs"))
    p.add_argument(
        "--timeout", type=positive, default=600.0, help="give up after this many seconds"
    )
    p.add_argument("--json", action="store_true", help="print one final JSON object")
    p.add_argument("--in-memory", action="store_true",
                   help="instead: one in-memory round on random data (no network, no training)")  # fmt: skip
    add_in_memory_arguments(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.in_memory:
        return run_in_memory(args)
    from node.provision import FederationOptions

    options = FederationOptions(
        nodes=args.nodes, rounds=args.rounds, dataset=args.dataset, model=args.model,
        epsilon=args.epsilon, delta=args.delta, bits=args.bits,
        learning_rate=0.3 if args.dataset == "digits" else 0.1, path=args.path,
        committee=(0, 1),
    )  # fmt: skip
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    root = args.runs_dir / stamp
    report = run_federation(options, root, kill_at_round=args.kill_node_at_round,
                            timeout=args.timeout, live=not args.json)  # fmt: skip
    if args.json:
        print(json.dumps(report))
    else:
        print_summary(report)
    return 0 if report["ok"] else 1


def run_federation(options, root: Path, *, kill_at_round: int | None = None, timeout: float = 600.0,
                   live: bool = False, baseline: bool = True) -> dict:  # fmt: skip
    """Provision, run and summarise one local federation; returns the report dict.

    baseline: also run non-private FedAvg in-process on the same split (the demo's
    comparison column; benchmarks skip it)."""
    from node import training
    from node.provision import provision, start_aggregator, start_node, stop_all, wait_for_address

    t_start = time.monotonic()
    fed = provision(root, options)
    accuracies = (
        training.fedavg_baseline(
            list(fed.partitions), fed.test, kind=options.model, rounds=options.rounds,
            epochs=options.epochs, learning_rate=options.learning_rate,
            batch_size=options.batch_size, seed=options.seed,
        )
        if baseline
        else []
    )  # fmt: skip
    aggregator = start_aggregator(fed)
    processes = [aggregator]
    killed: int | None = None
    try:
        address = wait_for_address(fed, aggregator)
        # --kill-node-at-round: site-1 dies right after uploading its masked input of
        # that round (between MaskedInputCollection and Unmasking), like a kill -9. On the
        # CKKS path (no recovery stage) the last site dies before its upload instead: it
        # is absent from the sum (the first sites are the decryption committee).
        victim = options.nodes - 1 if options.path == "ckks" else 0
        nodes = [
            start_node(
                fed, i, address,
                crash_after_upload=kill_at_round if i == victim and options.path != "ckks" else None,
                crash_before_upload=kill_at_round if i == victim and options.path == "ckks" else None,
            )
            for i in range(options.nodes)
        ]  # fmt: skip
        processes += nodes
        view = _LiveView(fed) if live else None
        deadline = time.monotonic() + timeout
        while aggregator.poll() is None and time.monotonic() < deadline:
            status = _read_status(fed)
            if kill_at_round is not None and killed is None and nodes[victim].poll() is not None:
                killed = victim
            if view:
                view.update(status, killed)
            time.sleep(0.25)
        if kill_at_round is not None and nodes[victim].poll() is not None:
            killed = victim
        if view:
            view.update(_read_status(fed), killed, final=True)
        timed_out = aggregator.poll() is None
    finally:
        stop_all(processes)
    return _report(
        fed, accuracies, killed, timed_out, time.monotonic() - t_start, aggregator.returncode
    )


def _read_status(fed) -> dict:
    try:
        return json.loads((fed.run_dir / "status.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def node_epsilons(fed) -> dict[str, float]:
    import dp

    out = {}
    for i in range(fed.options.nodes):
        path = fed.ledger(i)
        if path.exists():
            ledger = dp.PrivacyLedger(path, delta=fed.options.delta, epsilon_cap=1e9)
            out[f"site-{i + 1}"] = ledger.epsilon()[0] if ledger.records else 0.0
        else:
            out[f"site-{i + 1}"] = 0.0
    return out


def _report(fed, baseline, killed, timed_out, seconds, status) -> dict:
    rows = []
    metrics = fed.run_dir / "metrics.csv"
    if metrics.exists():
        with metrics.open() as fh:
            rows = list(csv.DictReader(fh))
    accuracy = {
        int(r["round"]): float(r["accuracy"]) for r in rows if r.get("accuracy") not in (None, "")
    }
    contributors = {int(r["round"]): int(r["contributors"]) for r in rows}
    epsilon = {int(r["round"]): float(r["epsilon"]) for r in rows}
    rounds = [
        {
            "round": r,
            "accuracy": accuracy.get(r),
            "baseline_accuracy": baseline[r] if r < len(baseline) else None,
            "contributors": contributors.get(r),
            "aggregator_epsilon": epsilon.get(r),
        }
        for r in range(0, fed.options.rounds + 1)
    ]
    completed = sum(1 for r in rows if int(r["round"]) > 0)
    final = max((r for r in accuracy if r > 0), default=None)
    return {
        "ok": (not timed_out) and status == 0 and completed == fed.options.rounds,
        "rounds": rounds,
        "rounds_completed": completed,
        "final_accuracy": accuracy.get(final) if final else None,
        "baseline_accuracy": baseline[-1] if baseline else None,
        "initial_accuracy": accuracy.get(0),
        "epsilon_per_node": node_epsilons(fed),
        "aggregator_epsilon": epsilon.get(final) if final else 0.0,
        "epsilon_target": fed.options.epsilon,
        "delta": fed.options.delta,
        "nodes": fed.options.nodes,
        "path": fed.options.path,
        "killed_node": f"site-{killed + 1}" if killed is not None else None,
        "timed_out": timed_out,
        "seconds": seconds,
        "run_dir": str(fed.root),
    }


class _LiveView:
    """A rich live table refreshed from the aggregator's status file and the ledgers."""

    def __init__(self, fed) -> None:
        from rich.console import Console
        from rich.live import Live

        self.fed = fed
        self.console = Console(stderr=True)
        self.live = Live(console=self.console, refresh_per_second=4, transient=False)
        self.live.start()
        self._last_ledgers = 0.0
        self._eps: dict[str, float] = {}

    def update(self, status: dict, killed, final: bool = False) -> None:
        from rich.table import Table

        now = time.monotonic()
        if now - self._last_ledgers > 1.0 or final:
            from dp import DpError

            with contextlib.suppress(DpError):  # a ledger line being written: keep the last reading
                self._eps = node_epsilons(self.fed)
            self._last_ledgers = now
        table = Table(
            title=f"blindsum demo: {self.fed.options.nodes} nodes, mTLS on 127.0.0.1 — {self.fed.root}"
        )
        table.add_column("round")
        table.add_column("stage")
        table.add_column("contributors", justify="right")
        table.add_column("accuracy", justify="right")
        table.add_column("epsilon (aggregator)", justify="right")
        acc = status.get("accuracy")
        table.add_row(
            f"{status.get('round', 0)}/{self.fed.options.rounds}", str(status.get("stage", status.get("state", "starting"))),
            str(status.get("contributors", "")), f"{acc:.3f}" if isinstance(acc, float) else "",
            f"{status.get('epsilon', 0.0):.3f}",
        )  # fmt: skip
        nodes = Table(title="epsilon spent per node (own ledger)")
        for name in self._eps:
            nodes.add_column(
                name + (" (killed)" if killed is not None and name == f"site-{killed + 1}" else ""),
                justify="right",
            )
        nodes.add_row(*[f"{v:.3f}" for v in self._eps.values()])
        from rich.console import Group

        self.live.update(Group(table, nodes))
        if final:
            self.live.stop()


def print_summary(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(
        title=f"accuracy per round: private (DDG + {'CKKS' if report.get('path') == 'ckks' else 'SecAgg+'})"
        " vs non-private FedAvg on the same split"
    )
    table.add_column("round", justify="right")
    table.add_column("contributors", justify="right")
    table.add_column("blindsum", justify="right")
    table.add_column("FedAvg (no privacy)", justify="right")
    table.add_column("epsilon (aggregator)", justify="right")
    for r in report["rounds"]:
        table.add_row(
            str(r["round"]), "" if r["contributors"] is None else str(r["contributors"]),
            "" if r["accuracy"] is None else f"{r['accuracy']:.3f}",
            "" if r["baseline_accuracy"] is None else f"{r['baseline_accuracy']:.3f}",
            "" if r["aggregator_epsilon"] is None else f"{r['aggregator_epsilon']:.3f}",
        )  # fmt: skip
    console.print(table)
    eps = Table(title=f"epsilon per node at delta={report['delta']:g} (each node's own ledger)")
    eps.add_column("node")
    eps.add_column("epsilon", justify="right")
    for name, value in report["epsilon_per_node"].items():
        eps.add_row(name + (" (killed)" if name == report["killed_node"] else ""), f"{value:.3f}")
    console.print(eps)
    verdict = "completed" if report["ok"] else "did NOT complete"
    console.print(
        f"{report['rounds_completed']}/{len(report['rounds']) - 1} rounds {verdict} in {report['seconds']:.1f} s; "
        f"run directory: {report['run_dir']}"
    )
