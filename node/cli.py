"""The `blindsum` command line: one dispatcher; each command group lives in its own module."""

from __future__ import annotations

import argparse
import importlib
import sys

# (command, module, help). Each module provides `add_parser(subparsers)` which
# registers its sub-command and sets `func` (called with the parsed args, returns
# an exit status). Modules are imported lazily so `blindsum dp` never loads torch.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("dp", "node.dp_cli", "differential-privacy parameters and accounting"),
    ("bench", "bench.cli", "protocol and mechanism benchmarks"),
    (
        "demo",
        "node.federation_demo",
        "run a local federation (or --in-memory one round) and report it",
    ),
    ("pki", "node.pki_cli", "federation PKI: CA, site keys and certificates"),
    ("server", "node.aggregator", "run the aggregator of a federation"),
    ("node", "node.participant", "run one participant of a federation"),
    ("audit", "node.audit", "verify a run's transcript and recompute its privacy claim"),
)


class ArgumentParser(argparse.ArgumentParser):
    """argparse that reports bad input as one line and exit status 2, no usage dump."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="blindsum", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=ArgumentParser)
    wanted = argv[0] if argv else None
    for name, module, help_text in COMMANDS:
        if wanted in (None, name, "-h", "--help") or wanted.startswith("-"):
            importlib.import_module(module).add_parser(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv).parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
