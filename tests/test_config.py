"""Federation, aggregator, node and policy config validation: every error names the key."""

from __future__ import annotations

import re

import pytest

from node.cli import main
from node.config import (
    DEFAULT_AGGREGATOR_WORKERS,
    ConfigError,
    load_aggregator_config,
    load_federation,
    load_node_config,
    load_policy,
)
from node.provision import FederationOptions, provision


@pytest.fixture(scope="module")
def fed(tmp_path_factory):
    return provision(tmp_path_factory.mktemp("cfg") / "fed", FederationOptions(nodes=3, rounds=2))


def test_provisioned_configs_load(fed):
    federation = load_federation(fed.federation)
    assert [m.id for m in federation.participants] == [1, 2, 3]
    assert federation.dp.bits == 16 and federation.secagg.graph == "harary"
    node = load_node_config(fed.node_configs[0])
    assert node.name == "site-1" and node.policy.assumed_colluders == 1
    assert node.data.exists() and node.certificate.exists()


def test_aggregator_config_workers(fed, tmp_path):
    assert load_aggregator_config(fed.aggregator_config).workers == 2  # as provisioned
    text = fed.aggregator_config.read_text()
    for line, expected in (("workers = 1", 1), ("", DEFAULT_AGGREGATOR_WORKERS)):
        edited = fed.aggregator_config.parent / f"agg-{expected}-{bool(line)}.toml"
        edited.write_text(re.sub(r"^workers = 2$", line, text, flags=re.M))
        assert load_aggregator_config(edited).workers == expected
    assert 1 <= DEFAULT_AGGREGATOR_WORKERS <= 8
    for bad in ("workers = 0", "workers = 300", 'workers = "all"'):
        edited = fed.aggregator_config.parent / "agg-bad.toml"
        edited.write_text(re.sub(r"^workers = 2$", bad, text, flags=re.M))
        with pytest.raises(
            ConfigError, match=r"\[server\] workers = .*: must be an integer 1..256"
        ):
            load_aggregator_config(edited)


def _edit(path, pattern, replacement, tmp_path):
    text = path.read_text()
    new, count = re.subn(pattern, replacement, text, count=1, flags=re.M)
    assert count == 1, pattern
    out = tmp_path / path.name
    out.write_text(new)
    return out


@pytest.mark.parametrize(
    "pattern, replacement, message",
    [
        (r"^bits = 16$", "bits = 70", "[dp] bits = 70: must be an integer 1..62"),
        (r"^bits = 16$", 'bits = "16"', "[dp] bits"),
        (r"^delta = 1e-05$", "delta = 1.5", "[dp] delta = 1.5: must be a number in (0, 1)"),
        (r"^epsilon = 10.0$", "epsilon = 10.0\nsigma = 1.0", "exactly one of epsilon"),
        (r"^epsilon = 10.0$", "", "exactly one of epsilon"),
        (
            r"^graph = \"harary\"$",
            'graph = "ring"',
            "[secagg] graph = 'ring': must be one of harary, full",
        ),
        (r"^rounds = 2$", "rounds = 0", "[federation] rounds = 0"),
        (r"^rounds = 2$", "rounds = 2\nround = 3", "unknown key(s): round"),
        (r"^\[deadlines\]$", "[deadline]", "unknown section(s)"),
        (r"^address = .*$", 'address = "nowhere"', "[federation] address"),
        (r'^name = "site-2"$', 'name = "site-1"', "name values must be unique"),
        (r'^name = "site-3"$', 'name = "Site 3"', "must be a site name"),
        (r"^corrupt_fraction = 0.0$", "corrupt_fraction = 0.6\ndropout_fraction_x = 1", "[secagg]"),
        (
            r"^certificate_fingerprint = \"sha256:[0-9a-f]+\"$",
            'certificate_fingerprint = "md5:00"',
            "certificate_fingerprint",
        ),
        (
            r"^minimum_contributors = 3$",
            "minimum_contributors = 9",
            "[dp] minimum_contributors = 9",
        ),
    ],
)
def test_federation_errors_name_the_key(fed, tmp_path, pattern, replacement, message):
    bad = _edit(fed.federation, pattern, replacement, tmp_path)
    with pytest.raises(ConfigError) as err:
        load_federation(bad)
    assert message in str(err.value)
    assert str(err.value).startswith("federation.toml: ")


def test_too_few_participants(tmp_path, fed):
    text = fed.federation.read_text()
    first = text.index("[[participants]]")
    second = text.index("[[participants]]", first + 1)
    (tmp_path / "federation.toml").write_text(text[:second] + text[text.index("[model]") :])
    with pytest.raises(ConfigError, match="at least 3 participants"):
        load_federation(tmp_path / "federation.toml")


@pytest.mark.parametrize(
    "pattern, replacement, message",
    [
        (r"^epsilon_cap = .*$", "epsilon_cap = -1", "[policy] epsilon_cap = -1"),
        (r"^assumed_colluders = 1$", "assumed_colluders = 3", "must exceed assumed_colluders"),
        (r"^aggregator = .*$", 'aggregator = "friendly"', "[policy] aggregator = 'friendly'"),
        (r"^delta = .*$", "delta = 0", "[policy] delta = 0"),
    ],
)
def test_policy_errors_name_the_key(fed, tmp_path, pattern, replacement, message):
    bad = _edit(fed.root / "site-1" / "policy.toml", pattern, replacement, tmp_path)
    with pytest.raises(ConfigError) as err:
        load_policy(bad)
    assert message in str(err.value)


def test_node_name_must_be_in_the_roster(fed):
    cfg = fed.node_configs[0]
    original = cfg.read_text()
    try:
        cfg.write_text(original.replace('name = "site-1"', 'name = "site-9"'))
        with pytest.raises(ConfigError, match="not a participant"):
            load_node_config(cfg)
    finally:
        cfg.write_text(original)


def test_missing_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="file not found"):
        load_federation(tmp_path / "nope.toml")
    (tmp_path / "broken.toml").write_text("this is = = not toml")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_federation(tmp_path / "broken.toml")


@pytest.mark.parametrize("command", ["server", "node"])
def test_cli_reports_config_errors_in_one_line(command, tmp_path, capsys):
    assert main([command, "--config", str(tmp_path / "missing.toml")]) == 2
    err = capsys.readouterr().err
    assert f"blindsum {command}: error:" in err and "file not found" in err
    assert "Traceback" not in err
