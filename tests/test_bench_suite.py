"""`blindsum bench sweep | plot | peers`: tiny grids end to end, resume, grid validation."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from bench import peers, sweep
from bench.plot import plot_results
from node.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]


def _csv(out: Path) -> list[dict]:
    with (out / "results.csv").open(newline="") as fh:
        return list(csv.DictReader(fh))


def test_tiny_sweep_end_to_end(tmp_path, capsys):
    out = tmp_path / "sweep"
    argv = ["bench", "sweep", "--clients", "5,7", "--dim", "64,512", "--dropout", "0,0.2"]
    argv += ["--dp", "off,on", "--bits", "20", "--repeat", "2", "--workers", "2", "--out", str(out)]
    assert main([*argv, "--no-progress"]) == 0
    assert "sweep: median" in capsys.readouterr().out
    rows = _rows(out)
    assert len(rows) == 2 * 2 * 2 * 2 * 2  # n x d x dropout x dp, each twice
    assert {(r["key"], r["repeat"]) for r in rows} == {
        (p.key, rep)
        for p in sweep.build_grid(
            overrides={
                "clients": [5, 7],
                "dim": [64, 512],
                "dropout": [0.0, 0.2],
                "dp": ["off", "on"],
                "bits": [20],
            }  # fmt: skip
        ).points
        for rep in (0, 1)
    }
    for r in rows:
        assert r["correct"] is True, r["key"]
        assert r["dropped"] == int(r["dropout"] * r["clients"])
        assert r["survivors"] == r["clients"] - r["dropped"]
        # the limits are measured and below what the round took
        assert r["keystream_bytes_per_second"] > 0 and r["add_elements_per_second"] > 0
        assert 0 < r["participant_limit_seconds"] < r["participant_seconds_mean"]
        assert 0 < r["aggregator_limit_seconds"] < r["aggregator_seconds"]
        assert 0 < r["plaintext_sum_seconds"] < r["round_seconds"]
        assert r["masks_removed"] >= r["survivors"]
        assert r["bytes_up_per_participant"] > r["secagg_dim"] * 4 * 0.8
        if r["dp"] == "on":
            assert r["secagg_dim"] >= r["dim"] and r["secagg_dim"] & (r["secagg_dim"] - 1) == 0
            assert r["dp_encode_seconds"] > 0 and r["dp_decode_seconds"] > 0
        else:
            assert r["secagg_dim"] == r["dim"] and r["dp_encode_seconds"] is None
    table = _csv(out)
    assert len(table) == len(rows)
    assert list(table[0]) == list(sweep.CSV_COLUMNS)
    assert [(t["key"], int(t["repeat"])) for t in table] == [(r["key"], r["repeat"]) for r in rows]

    # plot reads the directory and writes PNGs beside the results
    assert main(["bench", "plot", str(out)]) == 0
    made = capsys.readouterr().out.split()
    names = {Path(p).name for p in made}
    assert {"cost_vs_clients.png", "cost_vs_dim.png", "cost_vs_dropout.png"} <= names
    assert {"bytes_vs_dim.png", "memory_vs_clients.png"} <= names
    for p in made:
        data = Path(p).read_bytes()
        assert data.startswith(PNG_MAGIC) and 5_000 < len(data) < 400_000

    # summaries: median with min and max over the repeats
    summary = sweep.summarise(rows)
    assert len(summary) == 16 and all(e["repeats"] == 2 for e in summary)
    for e in summary:
        assert e["round_seconds_min"] <= e["round_seconds"] <= e["round_seconds_max"]


def test_resume_after_interruption_runs_only_missing(tmp_path):
    out = tmp_path / "sweep"
    grid = sweep.build_grid(
        overrides={"clients": [5, 6], "dim": [32, 64], "repeat": 2}, default_workers=1
    )
    assert len(grid.runs()) == 8
    sweep.run_sweep(grid, out, progress=False)
    full = _rows(out)
    assert len(full) == 8

    # Interrupt: keep 3 complete rows, a torn 4th line, and a CSV that ran ahead.
    lines = (out / "results.jsonl").read_text().splitlines(keepends=True)
    (out / "results.jsonl").write_text("".join(lines[:3]) + lines[3][:40])
    csv_lines = (out / "results.csv").read_text().splitlines(keepends=True)
    (out / "results.csv").write_text("".join(csv_lines[:6]))

    ran = []

    def counting(point, **kw):
        ran.append(point.key)
        return sweep.run_point(point, **kw)

    rows = sweep.run_sweep(grid, out, progress=False, runner=counting)
    assert len(ran) == 5
    kept = {(r["key"], r["repeat"]) for r in full[:3]}
    assert not kept & {(r["key"], r["repeat"]) for r in rows[3:]}
    final = _rows(out)  # every line parses: the torn one was dropped
    assert {(r["key"], r["repeat"]) for r in final} == {(p.key, r) for p, r in grid.runs()}
    assert len(final) == 8 and len(rows) == 8
    assert len(_csv(out)) == 8

    # Nothing left to do: a rerun runs nothing.
    ran.clear()
    sweep.run_sweep(grid, out, progress=False, runner=counting)
    assert ran == [] and len(_rows(out)) == 8


@pytest.mark.parametrize(
    ("flag", "value", "named"),
    [
        ("--clients", "10,-5", "-5"),
        ("--clients", "2", "2"),
        ("--dim", "0", "0"),
        ("--dim", "100,-1", "-1"),
        ("--dropout", "0,1", "1"),
        ("--dropout", "1.5", "1.5"),
        ("--bits", "0", "0"),
        ("--bits", "32,63", "63"),
        ("--graph", "ring", "ring"),
        ("--dp", "maybe", "maybe"),
        ("--drop-stage", "never", "never"),
        ("--repeat", "0", "0"),
    ],
)
def test_bad_flags_refused_before_anything_runs(tmp_path, capsys, flag, value, named):
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exc:
        main(["bench", "sweep", flag, value, "--out", str(out), "--no-progress"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert flag in err and named in err
    assert len(err.strip().splitlines()[-1]) < 200 and "Traceback" not in err
    assert not out.exists()


def test_path_ckks_refused_when_unavailable(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sweep, "_ckks_available", lambda: False)
    out = tmp_path / "never"
    with pytest.raises(SystemExit) as exc:
        main(["bench", "sweep", "--path", "masking,ckks", "--out", str(out)])
    assert exc.value.code == 2
    assert "'ckks' is not available" in capsys.readouterr().err
    assert not out.exists()
    with pytest.raises(sweep.GridError, match="path: 'ckks' is not available"):
        sweep.build_grid({"path": ["ckks"]})


@pytest.mark.skipif(not sweep._ckks_available(), reason="node.ckks (TenSEAL path) absent")
def test_path_ckks_point_runs(tmp_path):
    grid = sweep.build_grid(
        overrides={
            "clients": [4],
            "dim": [300],
            "path": ["ckks"],
            "dp": ["off", "on"],
            "bits": [16],
        },
        default_workers=1,
    )
    rows = sweep.run_sweep(grid, tmp_path, progress=False)
    assert len(rows) == 2 and all(r["correct"] for r in rows)
    assert all(r["path"] == "ckks" and r["bytes_up_per_participant"] > 0 for r in rows)


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ("clients = [10, -3]", "clients: -3 is outside the allowed range 3..100000"),
        ("dropout = [0.0, 1.0]", "dropout: 1 is outside the allowed range [0, 1)"),
        ("bits = [64]", "bits: 64 is outside the allowed range 1..62"),
        ("dim = [-100]", "dim: -100 is outside the allowed range"),
        ('graph = ["full", "star"]', "graph: 'star' is not one of full, harary"),
        ('path = ["gpu"]', "path: 'gpu' is not one of masking, ckks"),
        ("clientz = [10]", "clientz: unknown key"),
        ("[[grid]]\nclients = [5]\ndropout = [0.5]", "no SecAgg parameters"),
        ("[[grid]]\nbits = [0]", "bits: 0 is outside the allowed range 1..62"),
        ("clients = [", "not valid TOML"),
    ],
)
def test_bad_toml_grid_refused(tmp_path, capsys, toml, named):
    cfg = tmp_path / "grid.toml"
    cfg.write_text(toml + "\n")
    out = tmp_path / "never"
    assert main(["bench", "sweep", "--config", str(cfg), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert named in err and str(cfg) in err
    assert not out.exists()


def test_toml_subgrids_and_flag_override(tmp_path):
    cfg = tmp_path / "grid.toml"
    cfg.write_text(
        "dim = [64]\nrepeat = 2\n"
        "[[grid]]\nclients = [5, 6]\ngraph = ['full', 'harary']\n"
        "[[grid]]\nclients = [5]\ndim = [32, 64]\nrepeat = 1\n"
    )
    grid = sweep.build_grid(sweep.load_config(str(cfg)))
    keys = [p.key for p in grid.points]
    assert len(keys) == len(set(keys)) == 5  # (5, 64, harary) appears in both sub-grids
    assert len(grid.runs()) == 4 * 2 + 1
    grid = sweep.build_grid(sweep.load_config(str(cfg)), {"dim": [16], "repeat": 1})
    assert {p.dim for p in grid.points} == {16} and len(grid.runs()) == 4


def test_plot_refuses_missing_results(tmp_path, capsys):
    assert main(["bench", "plot", str(tmp_path)]) == 2
    assert "results.jsonl does not exist" in capsys.readouterr().err
    # a directory whose results vary nothing draws nothing
    sweep.run_sweep(
        sweep.build_grid(overrides={"clients": [5], "dim": [16]}), tmp_path, progress=False
    )
    assert plot_results(tmp_path) == []


def test_peers_without_flower_prints_blindsum_side_and_why(tmp_path):
    report = peers.compare(
        clients=10, dim=256, dropout=0.1, neighbours=[4], threshold=None, repeat=1,
        workers=1, venv=tmp_path / "no-venv", install=False, progress=lambda _: None,
    )  # fmt: skip
    assert report["blindsum"]["correct"] is True
    assert report["flower"] == [] and "no flwr==1.42.0" in report["flower_error"]
    assert len(report["flower_does_not_provide"]) == 3


@pytest.mark.skipif(
    not (peers.DEFAULT_VENV / "bin" / "python").exists(), reason=".venv-peers (Flower) absent"
)
def test_peers_flower_round_in_its_venv():
    report = peers.compare(
        clients=10, dim=300, dropout=0.2, neighbours=[4, "k"], threshold=None, repeat=1,
        workers=1, venv=peers.DEFAULT_VENV, install=False, progress=lambda _: None,
    )  # fmt: skip
    assert report["flower_error"] is None, report["flower_error"]
    assert report["flower"], "Flower produced no rows"
    for f in report["flower"]:
        assert f["completed"] and f["stages"] == 4 and f["dropped"] == 2
        assert f["max_abs_error"] < 0.05  # within Flower's own quantization error
        assert f["aggregator_seconds"] > 0 and f["bytes_up_per_participant"] > 300 * 8


def test_trace_memory_records_heap_peak(tmp_path):
    grid = sweep.build_grid(
        {"trace_memory": True}, {"clients": [5], "dim": [4096]}, default_workers=1
    )
    (row,) = sweep.run_sweep(grid, tmp_path, progress=False)
    assert row["correct"] and row["traced_peak_bytes"] > 4096 * 4
    with pytest.raises(sweep.GridError, match="trace_memory: 'yes' is not true or false"):
        sweep.build_grid({"trace_memory": "yes"})
