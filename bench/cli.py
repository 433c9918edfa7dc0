"""`blindsum bench`: one sub-command per benchmark, each in its own module."""

from __future__ import annotations

import argparse
import importlib

# (sub-command, module): each module provides add_parser(subparsers).
BENCHMARKS: tuple[tuple[str, str], ...] = (
    ("secagg", "bench.secagg_bench"),
    ("dp", "bench.dp_bench"),
    ("e2e", "bench.e2e_bench"),
    ("ckks", "bench.ckks_bench"),
    ("sweep", "bench.sweep"),
    ("plot", "bench.plot"),
    ("peers", "bench.peers"),
)
# What `blindsum bench all` (and `make bench`) runs: the self-contained benchmarks
# at their default sizes. sweep/plot take a grid and a directory; peers installs
# Flower into its own virtualenv; run those explicitly.
ALL = ("secagg", "dp", "ckks", "e2e")


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("bench", help="protocol and mechanism benchmarks")
    sub = parser.add_subparsers(dest="benchmark", required=True, parser_class=type(parser))
    for _name, module in BENCHMARKS:
        importlib.import_module(module).add_parser(sub)
    all_parser = sub.add_parser("all", help=f"{', '.join(ALL)} at their default sizes")
    all_parser.set_defaults(func=_run_all)


def _run_all(args: argparse.Namespace) -> int:
    from node.cli import main

    status = 0
    for name in ALL:
        status |= main(["bench", name])
    return status
