"""`blindsum demo` and `blindsum bench secagg`: output shape, correctness flag, bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from node.cli import main


def run_json(capsys, argv):
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_bench_secagg_json(capsys):
    report = run_json(
        capsys,
        ["bench", "secagg", "--clients", "12", "--dim", "1000", "--dropout", "0.2", "--json"],
    )
    for key in (
        "correct", "clients", "dim", "k", "t", "aggregator_seconds", "participant_seconds_mean",
        "round_seconds", "bytes_up_per_participant", "peak_rss_bytes", "keystream_bytes_per_second",
    ):  # fmt: skip
        assert key in report, key
    assert report["correct"] is True
    assert report["clients"] == 12 and report["dim"] == 1000
    assert report["dropped"] == 2
    # every participant uploads at least its masked vector (4 bytes per lane at 32 bits)
    assert report["bytes_up_per_participant"] > 1000 * 4 * 0.8
    assert report["keystream_bytes_per_second"] > 0


def test_bench_secagg_full_graph_and_repeat(capsys):
    report = run_json(
        capsys,
        ["bench", "secagg", "--clients", "8", "--dim", "64", "--graph", "full", "--bits", "40",
         "--drop-stage", "unmasking", "--dropout", "0.2", "--repeat", "2", "--json"],
    )  # fmt: skip
    assert report["correct"] and report["graph"] == "full" and report["k"] == 7
    assert report["repeat"] == 2
    runs = report["runs"]
    assert len(runs) == 2 and all(r["correct"] for r in runs)
    for stage, seconds in report["aggregator_stage_seconds"].items():  # medians per stage
        each = sorted(r["aggregator_stage_seconds"][stage] for r in runs)
        assert seconds == pytest.approx((each[0] + each[1]) / 2)
    totals = sorted(r["aggregator_seconds"] for r in runs)
    assert report["aggregator_seconds"] == pytest.approx((totals[0] + totals[1]) / 2)
    assert report["round_seconds_min"] <= report["round_seconds"] <= report["round_seconds_max"]


def test_bench_secagg_progress_bar(capsys):
    from bench.secagg_bench import _StageProgress

    with _StageProgress(True) as progress:  # what a terminal gets, on stderr
        progress.round = "round 1/2"
        for done in range(4):
            progress.update("share-keys", done, 3)
    assert capsys.readouterr().out == ""  # stdout stays clean for --json
    with _StageProgress(False) as progress:
        assert not progress.enabled
    report = run_json(
        capsys, ["bench", "secagg", "--clients", "5", "--dim", "8", "--no-progress", "--json"]
    )
    assert report["correct"]


def test_bench_secagg_human_output(capsys):
    assert main(["bench", "secagg", "--clients", "6", "--dim", "32"]) == 0
    out = capsys.readouterr().out
    assert "correct: True" in out and "keystream" in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--clients", "2"], "--clients"),
        (["--dim", "0"], "--dim"),
        (["--bits", "63"], "--bits"),
        (["--dropout", "1"], "--dropout"),
        (["--dropout", "x"], "--dropout"),
        (["--graph", "ring"], "--graph"),
        (["--drop-stage", "never"], "--drop-stage"),
    ],
)
def test_bench_secagg_bad_input(capsys, argv, fragment):
    with pytest.raises(SystemExit) as exc:
        main(["bench", "secagg", *argv])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_demo_json(capsys):
    report = run_json(capsys, ["demo", "--in-memory", "--clients", "8", "--dim", "300", "--json"])
    assert report["secagg_correct"] is True
    assert report["contributors"] == 8 - int(0.1 * 8)
    assert report["epsilon_planned"] <= report["epsilon_target"]
    # The decoded mean is the true mean plus noise of the planned size: the RMS
    # error of d' coordinates is within a few percent of sigma / sqrt(n).
    assert 0.8 < report["error_rms"] / report["expected_noise_rms"] < 1.25


def test_console_script_and_python_m_bench():
    out = subprocess.run(
        [sys.executable, "-m", "bench", "secagg", "--clients", "5", "--dim", "16", "--json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert json.loads(out.stdout)["correct"] is True


def test_bench_secagg_with_participants_in_a_child_process(capsys):
    report = run_json(
        capsys,
        ["bench", "secagg", "--clients", "8", "--dim", "500", "--dropout", "0.2",
         "--participants-process", "--json"],
    )  # fmt: skip
    assert report["correct"] is True and report["participants_in_subprocess"] is True
    assert report["dropped"] == 1


def test_bench_secagg_with_mask_worker_processes(capsys):
    """Mask jobs (incl. rebuilt keys of dropped participants) cross into worker processes."""
    report = run_json(
        capsys,
        ["bench", "secagg", "--clients", "10", "--dim", "300", "--dropout", "0.2", "--graph",
         "full", "--workers", "2", "--worker-processes", "--json"],
    )  # fmt: skip
    assert report["correct"] is True and report["worker_processes"] is True
    assert report["dropped"] == 2
    threads = run_json(
        capsys,
        ["bench", "secagg", "--clients", "10", "--dim", "300", "--dropout", "0.2", "--graph",
         "full", "--workers", "2", "--mask-workers", "threads", "--json"],
    )  # fmt: skip
    assert threads["correct"] is True and threads["worker_processes"] is False
