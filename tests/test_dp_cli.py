"""`blindsum dp ...` output and error paths (in process), plus one console-script run."""

from __future__ import annotations

import json
import math
import pathlib
import subprocess

import pytest

from dp import RoundRecord, epsilon_for, gamma_from_bits
from node.cli import main

EPS_ARGS = ["--clients", "100", "--sigma", "0.1", "--gamma", "1e-3", "--clip", "1"]
EPS_ARGS += ["--dim", "1000000", "--delta", "1e-5"]


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1
    return json.loads(out[0])


def test_epsilon_json_matches_library(capsys) -> None:
    res = run_json(capsys, ["dp", "epsilon", *EPS_ARGS, "--rounds", "3", "--q", "0.5", "--json"])
    r = RoundRecord(100, 0.1, 1e-3, 1.0, 1 << 20, math.exp(-0.5), 0.5)
    eps, order = epsilon_for([r] * 3, 1e-5)
    assert res["epsilon"] == pytest.approx(eps) and res["order"] == order
    assert res["padded_dim"] == 1 << 20 and res["delta"] == 1e-5
    assert 0 < res["gaussian_baseline_epsilon"] < res["epsilon"]


def test_epsilon_human_table(capsys) -> None:
    assert main(["dp", "epsilon", *EPS_ARGS]) == 0
    out = capsys.readouterr().out
    assert "epsilon" in out and "1048576" in out


def test_calibrate_and_params(capsys) -> None:
    argv = ["dp", "calibrate", *[a for a in EPS_ARGS if a not in ("--sigma", "0.1")]]
    res = run_json(capsys, [*argv, "--epsilon", "3", "--json"])
    assert res["epsilon"] <= 3.0 and res["sigma"] > 0.1  # eps(0.1) ~ 5.4 > 3
    res = run_json(
        capsys,
        [
            "dp",
            "params",
            "--bits",
            "16",
            "--clients",
            "100",
            "--dim",
            "100000",
            "--clip",
            "1",
            "--noise-multiplier",
            "1",
            "--json",
        ],
    )
    assert res["sigma"] == pytest.approx(0.1)
    assert res["gamma"] == pytest.approx(gamma_from_bits(16, 100, 100000, 1.0, 0.1))
    assert res["scale"] == pytest.approx(1 / res["gamma"]) and res["epsilon"] > 0


@pytest.mark.parametrize(
    ("flag", "value"),
    [("--clients", "-3"), ("--delta", "1.5"), ("--sigma", "abc"), ("--q", "0"), ("--dim", "0")],
)
def test_bad_flags_one_line_exit_2(capsys, flag: str, value: str) -> None:
    argv = [*EPS_ARGS, "--q", "0.5"]
    argv[argv.index(flag) + 1] = value
    with pytest.raises(SystemExit) as exc:
        main(["dp", "epsilon", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and flag in err[0] and "Traceback" not in err[0]


def test_mechanism_error_is_one_line_exit_2(capsys) -> None:
    argv = ["dp", "epsilon", *EPS_ARGS]
    argv[argv.index("--gamma") + 1] = "1"  # sigma/gamma = 0.1 < 0.5
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["blindsum dp: error: sigma/gamma must be >= 0.5"]


def test_console_script() -> None:
    exe = pathlib.Path(__file__).resolve().parents[1] / ".venv" / "bin" / "blindsum"
    out = subprocess.run(
        [str(exe), "dp", "epsilon", *EPS_ARGS, "--json"], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["padded_dim"] == 1 << 20
