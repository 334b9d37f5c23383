"""The CUDA sources compile (nvcc --ptx). Their maths, cohort.h, is the compiled CPU engine too:
tests/test_host.py checks it against the NumPy engine."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

KERNELS = Path(__file__).resolve().parents[1] / "kernels"


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("source", sorted(p.name for p in KERNELS.glob("*.cu")))
def test_cuda_source_compiles(source: str, tmp_path: Path):
    out = subprocess.run(
        ["nvcc", "--ptx", "-std=c++17", "-arch=compute_75", f"-I{KERNELS}", str(KERNELS / source)]
        + ["-o", str(tmp_path / "k.ptx")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert ".entry cohort_solve" in (tmp_path / "k.ptx").read_text()
