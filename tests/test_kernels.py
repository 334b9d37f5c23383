"""The CUDA sources compile (nvcc --ptx, and NVRTC as CuPy runs it). Their maths, cohort.h and
survival.h, is the compiled CPU engine too: tests/test_host.py checks it against the NumPy engine."""

from __future__ import annotations

import ctypes
import ctypes.util
import fnmatch
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import numpy as np
import pytest

from ewaste.engine import gpu, kernel
from ewaste.engine.arrays import NUMPY
from ewaste.engine.stockflow import SurvivalRows

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
    config = tomllib.loads((KERNELS.parent / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["ewaste.kernels"]
    for source in KERNELS.iterdir():
        if source.suffix in (".cu", ".cpp", ".h"):
            assert any(fnmatch.fnmatch(source.name, p) for p in patterns), source.name


def test_every_included_header_is_built_and_hashed():
    """The headers the sources include (transitively) are what the CPU build copies and keys on
    (host.SOURCES) and what the GPU cache key hashes (gpu.HEADERS): an edit to any of them rebuilds."""
    from ewaste.engine import host

    def included(name: str) -> set[str]:
        found = set(re.findall(r'^#include "([^"]+)"', (KERNELS / name).read_text(), re.M))
        return found.union(*(included(h) for h in found))

    assert included("cohort.cu") == set(gpu.HEADERS)
    assert included("host.cpp") | {"host.cpp"} == set(host.SOURCES)


def test_launch_arguments_match_the_kernel_signature():
    """gpu.py passes exactly the parameters of cohort_solve, in order, with matching scalar types."""
    source = (KERNELS / "cohort.cu").read_text()
    signature = re.search(r"cohort_solve\((.*?)\)\s*\{", source, re.S).group(1)
    params = [" ".join(p.split()) for p in signature.split(",")]
    names = [p.split()[-1].lstrip("*") for p in params]
    assert names == [name for name, _ in gpu.KERNEL_ARGS]
    c_types = {"int": np.int32, "long long": np.int64, "double": np.float64}
    for param, (name, scalar) in zip(params, gpu.KERNEL_ARGS, strict=True):
        c_type = param.rsplit(" ", 1)[0].replace("const ", "")
        assert (scalar is None) == ("*" in param), name
        if scalar is not None:
            assert c_types[c_type] is scalar, name


def test_launch_arguments_from_inputs():
    """Scalars typed, absent arrays replaced by the placeholder, outputs in place (NumPy stands in)."""
    rows = SurvivalRows("normal", {"mean": np.full((1, 4), 3.0), "std": np.ones((1, 4))}, 7, 1.0, "end", NUMPY)
    inputs = kernel.prepare(np.ones((7, 4)), True, rows, None, 0, "correct", np)
    out = kernel.allocate(inputs, np)
    unused = np.zeros(1)
    args = dict(zip([name for name, _ in gpu.KERNEL_ARGS], gpu.kernel_args(inputs, out, unused), strict=True))
    assert args["n"] == 7 and type(args["n"]) is np.int32 and type(args["stride"]) is np.int64
    assert args["attributes"] is unused and args["weights"] is unused and args["summary"] is unused
    assert args["inflow"] is out["inflow"] and args["driver"] is inputs.driver
