"""A throw-away local federation: PKI, data partitions, configs, and its processes.

Used by `blindsum demo`, the end-to-end tests and the e2e benchmark. Everything
lands under one directory:

    ca/                 the federation CA (ca.key never leaves it)
    aggregator/         its TLS key/cert, signing key, aggregator.toml
    site-N/             each node's TLS key/cert, signing key, data.npz, policy.toml,
                        node.toml, ledger.jsonl
    federation.toml     the shared federation config (roster with fingerprints and keys)
    test.npz            the aggregator's held-out evaluation set
    run/                the aggregator's run directory (transcript, metrics, model)
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from node.pki import certificate_fingerprint, init_ca, issue_site, load_signing_public

AGGREGATOR_NAME = "aggregator"


@dataclass(frozen=True)
class FederationOptions:
    nodes: int = 5
    rounds: int = 5
    dataset: str = "digits"
    model: str = "logreg"
    hidden: int = 32  # mlp width (benchmarks widen it to reach a dimension)
    epsilon: float | None = 10.0
    sigma: float | None = None
    delta: float = 1e-5
    bits: int = 16
    clip: float = 3.0
    epochs: int = 5
    learning_rate: float = 0.3
    batch_size: int = 16
    graph: str = "harary"
    # The aggregator is the adversary the masking must withstand (it may lie about
    # dropouts); colluding participants are priced in the DP accounting instead
    # (assumed_colluders), so a 5-node demo still tolerates one dropout.
    corrupt_fraction: float = 0.0
    dropout_fraction: float = 0.2
    minimum_contributors: int = 3
    assumed_colluders: int = 1
    epsilon_cap: float = 50.0
    alpha: float = 0.5
    seed: int = 0
    deadlines: dict[str, float] = field(
        default_factory=lambda: {
            "join": 60.0, "advertise_keys": 20.0, "share_keys": 20.0, "masked_input": 60.0,
            "consistency": 8.0, "unmasking": 8.0,
        }
    )  # fmt: skip
    caps: dict[int, float] = field(
        default_factory=dict
    )  # per-node epsilon caps (node index -> cap)
    path: str = "masking"  # or "ckks"
    # aggregator mask-removal workers: > 1 means that many worker processes
    aggregator_workers: int = 2
    committee: tuple[int, ...] = (
        0,
        1,
    )  # ckks: node indices of the decryption committee (lead first)


@dataclass(frozen=True)
class ProvisionedFederation:
    root: Path
    options: FederationOptions
    federation: Path
    aggregator_config: Path
    node_configs: tuple[Path, ...]
    run_dir: Path
    partitions: tuple[tuple, ...]  # (X, y) per node, for the in-process baseline
    test: tuple

    def ledger(self, index: int) -> Path:
        return self.root / f"site-{index + 1}" / "ledger.jsonl"


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return repr(value)


def _table(name: str, values: dict) -> str:
    lines = [f"[{name}]"] + [f"{k} = {_toml_value(v)}" for k, v in values.items() if v is not None]
    return "\n".join(lines) + "\n\n"


def provision(
    root: Path, options: FederationOptions, *, address: str = "127.0.0.1:0"
) -> ProvisionedFederation:
    from node.data import (
        dirichlet_partition,
        load_dataset,
        quantity_skew_partition,
        save_partition_npz,
        split_holdout,
    )

    root.mkdir(parents=True, exist_ok=True)
    ca_dir = root / "ca"
    init_ca(ca_dir, name="blindsum demo federation CA")
    agg_dir = root / AGGREGATOR_NAME
    agg = issue_site(ca_dir, AGGREGATOR_NAME, agg_dir)
    names = [f"site-{i + 1}" for i in range(options.nodes)]
    sites = [issue_site(ca_dir, name, root / name) for name in names]

    data = load_dataset(options.dataset)
    train, test = split_holdout(data, test_fraction=0.2, seed=options.seed)
    if options.dataset == "digits":
        parts = dirichlet_partition(train.y, options.nodes, alpha=options.alpha, seed=options.seed)
    else:
        parts = quantity_skew_partition(
            len(train.y), options.nodes, alpha=options.alpha, seed=options.seed
        )
    partitions = []
    for name, idx in zip(names, parts, strict=True):
        X, y = train.X[idx], train.y[idx]
        save_partition_npz(root / name / "data.npz", X, y)
        partitions.append((X, y))
    save_partition_npz(root / "test.npz", test.X, test.y)

    fed = root / "federation.toml"
    text = _table("federation", {"name": "blindsum-demo", "rounds": options.rounds, "address": address,
                                 "ca_certificate": "ca/ca.crt",
                                 "path": options.path if options.path != "masking" else None})  # fmt: skip
    text += _table("aggregator", {"name": AGGREGATOR_NAME, "certificate_fingerprint": certificate_fingerprint(agg.certificate),
                                  "signing_public_key": load_signing_public(agg.signing_public).hex()})  # fmt: skip
    for i, site in enumerate(sites):
        text += "[[participants]]\n" + "\n".join(
            f"{k} = {_toml_value(v)}"
            for k, v in {
                "name": site.name, "id": i + 1,
                "certificate_fingerprint": certificate_fingerprint(site.certificate),
                "signing_public_key": load_signing_public(site.signing_public).hex(),
            }.items()
        ) + "\n\n"  # fmt: skip
    text += _table("model", {"kind": options.model, "dataset": options.dataset, "epochs": options.epochs,
                             "learning_rate": options.learning_rate, "batch_size": options.batch_size,
                             "server_learning_rate": 1.0, "seed": options.seed,
                             "hidden": options.hidden})  # fmt: skip
    text += _table("dp", {"epsilon": options.epsilon, "sigma": options.sigma, "delta": options.delta,
                          "bits": options.bits, "clip": options.clip,
                          "minimum_contributors": options.minimum_contributors})  # fmt: skip
    text += _table("secagg", {"graph": options.graph, "corrupt_fraction": options.corrupt_fraction,
                              "dropout_fraction": options.dropout_fraction, "aggregator": "dropout-lying"})  # fmt: skip
    text += _table("deadlines", options.deadlines)
    if options.path == "ckks":
        committee = "[" + ", ".join(_toml_value(names[i]) for i in options.committee) + "]"
        text += f"[ckks]\ncommittee = {committee}\n\n"
    fed.write_text(text)

    run_dir = root / "run"
    agg_cfg = agg_dir / "aggregator.toml"
    agg_cfg.write_text(
        'federation = "../federation.toml"\n\n'
        + _table(
            "server",
            {
                "listen": address,
                "certificate": f"{AGGREGATOR_NAME}.crt",
                "key": f"{AGGREGATOR_NAME}.key",
                "signing_key": f"{AGGREGATOR_NAME}.signing.key",
                "run_directory": "../run",
                "evaluation_data": "../test.npz",
                "workers": options.aggregator_workers,
            },
        )  # fmt: skip
    )
    node_cfgs = []
    for i, site in enumerate(sites):
        d = root / site.name
        (d / "policy.toml").write_text(
            _table(
                "policy",
                {
                    "epsilon_cap": options.caps.get(i, options.epsilon_cap),
                    "delta": options.delta,
                    "assumed_colluders": options.assumed_colluders,
                    "minimum_contributors": options.minimum_contributors,
                    "corrupt_fraction": options.corrupt_fraction,
                    "dropout_fraction": options.dropout_fraction,
                    "aggregator": "dropout-lying",
                },
            )  # fmt: skip
        )
        cfg = d / "node.toml"
        cfg.write_text(
            'federation = "../federation.toml"\npolicy = "policy.toml"\n\n'
            + _table(
                "node",
                {
                    "name": site.name,
                    "certificate": f"{site.name}.crt",
                    "key": f"{site.name}.key",
                    "signing_key": f"{site.name}.signing.key",
                    "data": "data.npz",
                    "ledger": "ledger.jsonl",
                },
            )  # fmt: skip
        )
        node_cfgs.append(cfg)
    return ProvisionedFederation(
        root=root, options=options, federation=fed, aggregator_config=agg_cfg,
        node_configs=tuple(node_cfgs), run_dir=run_dir, partitions=tuple(partitions),
        test=(test.X, test.y),
    )  # fmt: skip


# --- processes ----------------------------------------------------------------------


def _blindsum(*args: str) -> list[str]:
    return [sys.executable, "-m", "node.cli", *args]


def start_aggregator(
    fed: ProvisionedFederation, *, log_file: Path | None = None
) -> subprocess.Popen:
    out = (log_file or fed.root / "aggregator.log").open("ab")
    return subprocess.Popen(
        _blindsum("server", "--config", str(fed.aggregator_config)),
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env(),
    )  # fmt: skip


def start_node(
    fed: ProvisionedFederation, index: int, address: str, *, crash_after_upload: int | None = None,
    crash_before_upload: int | None = None,
) -> subprocess.Popen:  # fmt: skip
    out = (fed.root / f"site-{index + 1}" / "node.log").open("ab")
    extra = ["--crash-after-upload", str(crash_after_upload)] if crash_after_upload else []
    if crash_before_upload:
        extra += ["--crash-before-upload", str(crash_before_upload)]
    return subprocess.Popen(
        _blindsum("node", "--config", str(fed.node_configs[index]), "--aggregator", address, *extra),
        stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=_env(),
    )  # fmt: skip


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONUNBUFFERED"] = "1"
    return env


def wait_for_address(
    fed: ProvisionedFederation, process: subprocess.Popen, timeout: float = 60.0
) -> str:
    """The aggregator writes its bound address to run/listening once it serves."""
    path = fed.run_dir / "listening"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        if process.poll() is not None:
            log = (fed.root / "aggregator.log").read_text(errors="replace")[-2000:]
            raise RuntimeError(f"the aggregator exited with status {process.returncode}:\n{log}")
        time.sleep(0.1)
    raise TimeoutError("the aggregator did not start listening in time")


def stop_all(processes: list[subprocess.Popen], timeout: float = 10.0) -> None:
    for p in processes:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + timeout
    for p in processes:
        try:
            p.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
