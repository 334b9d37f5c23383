"""The CUDA sources compile (nvcc --ptx). Their maths, cohort.h, is the compiled CPU engine too:
tests/test_host.py checks it against the NumPy engine."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from ewaste import gpu

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


def _nvrtc() -> str | None:
    """NVRTC, CuPy's run-time compiler: $EWASTE_NVRTC, the system's, or the nvidia-cuda-nvrtc wheel's."""
    if os.environ.get("EWASTE_NVRTC"):
        return os.environ["EWASTE_NVRTC"]
    try:
        import nvidia  # noqa: PLC0415 - the namespace package of NVIDIA's wheels, if installed

        found = sorted(p for d in nvidia.__path__ for p in Path(d).glob("*/lib/libnvrtc.so*"))
    except ImportError:
        found = []
    return ctypes.util.find_library("nvrtc") or (str(found[0]) if found else None)


@pytest.mark.skipif(_nvrtc() is None, reason="NVRTC not found (pip install nvidia-cuda-nvrtc, or set EWASTE_NVRTC)")
def test_kernel_compiles_as_cupy_compiles_it():
    """NVRTC with the source and options of gpu.py (no GPU needed): no errors, errors name the real file."""
    lib = ctypes.CDLL(_nvrtc())

    def compile_(code: str, options: tuple[str, ...]) -> tuple[int, str]:
        prog = ctypes.c_void_p()
        assert lib.nvrtcCreateProgram(ctypes.byref(prog), code.encode(), b"cohort.cu", 0, None, None) == 0
        opts = [o.encode() for o in (*options, "--gpu-architecture=compute_75")]
        status = lib.nvrtcCompileProgram(prog, len(opts), (ctypes.c_char_p * len(opts))(*opts))
        size = ctypes.c_size_t()
        lib.nvrtcGetProgramLogSize(prog, ctypes.byref(size))
        log = ctypes.create_string_buffer(size.value)
        lib.nvrtcGetProgramLog(prog, log)
        lib.nvrtcDestroyProgram(ctypes.byref(prog))
        return status, log.value.decode()

    code, options = gpu.kernel_source()
    status, log = compile_(code, options)
    assert status == 0, log
    broken = code + "\nthis is not C++;\n"
    status, log = compile_(broken, options)
    assert status != 0 and str(KERNELS / "cohort.cu") in log


def test_every_kernel_source_is_package_data():
    """A non-editable install carries every file the engines compile (host.cpp was once left out)."""
    import fnmatch  # noqa: PLC0415
    import tomllib  # noqa: PLC0415

    config = tomllib.loads((KERNELS.parent / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["ewaste.kernels"]
    for source in KERNELS.iterdir():
        if source.suffix in (".cu", ".cpp", ".h"):
            assert any(fnmatch.fnmatch(source.name, p) for p in patterns), source.name
