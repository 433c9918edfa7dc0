"""`blindsum bench`: one sub-command per benchmark, each in its own module."""

from __future__ import annotations

import argparse
import importlib

# (sub-command, module): each module provides add_parser(subparsers).
BENCHMARKS: tuple[tuple[str, str], ...] = (
    ("secagg", "bench.secagg_bench"),
    ("dp", "bench.dp_bench"),
    ("e2e", "bench.e2e_bench"),
    ("sweep", "bench.sweep"),
    ("plot", "bench.plot"),
    ("peers", "bench.peers"),
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="protocol and mechanism benchmarks")
    sub = parser.add_subparsers(dest="benchmark", required=True, parser_class=type(parser))
    for _name, module in BENCHMARKS:
        importlib.import_module(module).add_parser(sub)
    all_parser = sub.add_parser("all", help="every benchmark at its default sizes")
    all_parser.set_defaults(func=_run_all)


def _run_all(args: argparse.Namespace) -> int:
    from node.cli import main

    status = 0
    for name, _module in BENCHMARKS:
        status |= main(["bench", name])
    return status
