"""tools/device-check.sh refuses a machine without a usable GPU at once, in one line, with exit code 2,
before it creates anything; tools/fetch-wheels.sh asks pip for the right wheels (pip is stood in for:
no network here)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHECK = ROOT / "tools" / "device-check.sh"
FETCH = ROOT / "tools" / "fetch-wheels.sh"
BASH = shutil.which("bash")
pytestmark = pytest.mark.skipif(BASH is None, reason="bash not installed")


def script(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n", encoding="utf-8")
    path.chmod(0o755)
    return path


def device_check(tmp_path: Path, *, smi: str | None = None, python: str | None = None, wheels: Path | None = None):
    """Run device-check.sh with a PATH holding only the stand-ins given (no coreutils, no real driver)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    if smi is not None:
        script(bin_dir, "nvidia-smi", smi)
    env = {"PATH": str(bin_dir), "VENV": str(tmp_path / "venv"), "WHEELS": str(wheels or tmp_path / "no-wheels")}
    if python is not None:
        env["PYTHON"] = str(script(bin_dir, "python3", python))
    out = tmp_path / "out"
    done = subprocess.run([BASH, str(CHECK), str(out)], env=env, capture_output=True, text=True, timeout=30)
    assert not out.exists() and not (tmp_path / "venv").exists(), "created something before refusing"
    return done


def refused(done: subprocess.CompletedProcess) -> str:
    """The one line of a refusal."""
    assert done.returncode == 2, done.stderr
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    return line


GPU_LISTED = 'if [ "$1" = "-L" ]; then echo "GPU 0: NVIDIA H200 (UUID: GPU-0)"; fi'
DRAIN = "while read -r line; do :; done"  # reads the probe from stdin, with shell builtins only


def test_no_driver(tmp_path: Path):
    line = refused(device_check(tmp_path))
    assert line == "device-check: no usable GPU: nvidia-smi not found (no NVIDIA driver); nothing was run"


def test_driver_that_cannot_reach_the_gpu(tmp_path: Path):
    smi = 'echo "NVIDIA-SMI has failed because it couldn\'t communicate with the NVIDIA driver."; exit 9'
    line = refused(device_check(tmp_path, smi=smi))
    assert line == (
        "device-check: no usable GPU: nvidia-smi failed: NVIDIA-SMI has failed because it couldn't communicate "
        "with the NVIDIA driver.; nothing was run"
    )


def test_driver_without_a_gpu(tmp_path: Path):
    line = refused(device_check(tmp_path, smi="echo 'No devices were found'"))
    assert line == "device-check: no usable GPU: nvidia-smi lists none; nothing was run"


def test_gpu_that_cupy_cannot_use(tmp_path: Path):
    error = "ModuleNotFoundError: No module named 'cupy'"
    python = f"{DRAIN}; echo 'Traceback (most recent call last):' >&2; echo \"{error}\" >&2; exit 1"
    line = refused(device_check(tmp_path, smi=GPU_LISTED, python=python))
    assert line.startswith("device-check: no usable GPU: CuPy cannot run on it with ")
    assert line.endswith(": ModuleNotFoundError: No module named 'cupy'; nothing was run")


def test_gpu_without_wheels(tmp_path: Path):
    (tmp_path / "wheels").mkdir()
    python = f'{DRAIN}; echo "1 device(s), CuPy 14.2.0, CUDA runtime 13000"'
    line = refused(device_check(tmp_path, smi=GPU_LISTED, python=python, wheels=tmp_path / "wheels"))
    assert line.startswith(f"device-check: no ewaste wheel in {tmp_path / 'wheels'}: run tools/fetch-wheels.sh")


def test_usage(tmp_path: Path):
    done = subprocess.run([BASH, str(CHECK)], capture_output=True, text=True, timeout=30)
    assert refused(done) == "device-check: usage: tools/device-check.sh OUTDIR"


def test_fetch_wheels_asks_pip_for_the_target_and_drops_excluded_wheels(tmp_path: Path):
    calls = tmp_path / "pip-calls"
    # pip stood in for (it would download); the requirements are still read by the real Python
    python = script(
        tmp_path, "python", f'if [ "$1" = "-m" ]; then echo "$@" >>{calls}; exit 0; fi\nexec {sys.executable} "$@"'
    )
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    for name in (
        "numpy-2.5.5-cp312-cp312-manylinux_2_28_x86_64.whl",
        "netCDF4-1.7.5-cp311-abi3-manylinux_2_28_x86_64.whl",
        "scipy-1.18.1-cp312-cp312-manylinux_2_28_x86_64.whl",
    ):
        (wheels / name).write_bytes(b"")
    done = subprocess.run(
        [BASH, str(FETCH), "--exclude", "NumPy", "--exclude", "netcdf4"],
        env={"PATH": "/usr/bin:/bin", "PYTHON": str(python), "WHEELS": str(wheels)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    download, build = calls.read_text().splitlines()
    assert download.startswith("-m pip download --only-binary=:all: --implementation cp --python-version 3.12 ")
    for part in (
        "--platform manylinux2014_x86_64",
        "--platform manylinux_2_28_x86_64",
        f"--dest {wheels}",
        "numpy>=1.26",
        "xarray>=2024.1",
        "netCDF4>=1.6",
        "pytest-benchmark>=4",
        "pytest>=8",
    ):
        assert part in download
    assert "cupy" not in download and "flodym" not in download
    assert build == f"-m pip wheel --no-deps --wheel-dir {wheels} {ROOT}"
    assert sorted(p.name for p in wheels.iterdir()) == ["scipy-1.18.1-cp312-cp312-manylinux_2_28_x86_64.whl"]


def test_fetch_wheels_usage():
    done = subprocess.run([BASH, str(FETCH), "--bogus"], capture_output=True, text=True, timeout=30)
    assert done.returncode == 2
    assert done.stderr == "fetch-wheels: usage: tools/fetch-wheels.sh [--exclude NAME]...\n"
