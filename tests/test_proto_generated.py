"""The committed generated protobuf modules are exactly what `make proto` produces."""

from __future__ import annotations

import filecmp
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROTO_DIR = ROOT / "proto"
PACKAGE = Path("blindsum") / "v1"


def test_generated_modules_are_up_to_date(tmp_path):
    sources = sorted((PROTO_DIR / PACKAGE).glob("*.proto"))
    assert sources, "no .proto files found"
    (tmp_path / PACKAGE).mkdir(parents=True)
    for src in sources:
        shutil.copy(src, tmp_path / PACKAGE / src.name)
    cmd = [
        sys.executable, "-m", "grpc_tools.protoc", f"-I{tmp_path}",
        f"--python_out={tmp_path}", f"--pyi_out={tmp_path}", f"--grpc_python_out={tmp_path}",
        *[str(PACKAGE / s.name) for s in sources],
    ]  # fmt: skip
    subprocess.run(cmd, check=True, cwd=tmp_path, capture_output=True)
    generated = sorted(p.name for p in (tmp_path / PACKAGE).iterdir() if p.suffix != ".proto")
    assert generated, "protoc produced nothing"
    for name in generated:
        committed = PROTO_DIR / PACKAGE / name
        assert committed.exists(), f"{committed} is missing: run `make proto` and commit it"
        assert filecmp.cmp(committed, tmp_path / PACKAGE / name, shallow=False), (
            f"{committed} is stale: run `make proto` and commit the result"
        )


def test_generated_imports_are_absolute():
    text = (PROTO_DIR / PACKAGE / "secagg_pb2.py").read_text()
    assert "blindsum/v1/secagg.proto" in text
