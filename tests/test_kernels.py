"""The CUDA sources: they compile (nvcc --ptx), and their maths, built for the host, equals NumPy's."""

from __future__ import annotations

import ctypes
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

from ewaste.backend import NUMPY
from ewaste.stockflow import SurvivalRows, solve

ROOT = Path(__file__).resolve().parents[1]
KERNELS = ROOT / "kernels"
KINDS = {"fixed": 0, "normal": 1, "foldednormal": 2, "lognormal": 3, "weibull": 4}


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc not installed")
@pytest.mark.parametrize("source", sorted(p.name for p in KERNELS.glob("*.cu")))
def test_cuda_source_compiles(source: str, tmp_path: Path):
    out = subprocess.run(
        ["nvcc", "--ptx", "-arch=compute_75", f"-I{KERNELS}", str(KERNELS / source), "-o", str(tmp_path / "k.ptx")],
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert ".entry cohort_solve" in (tmp_path / "k.ptx").read_text()


@pytest.fixture(scope="module")
def host_lib(tmp_path_factory):
    compiler = shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        pytest.skip("no C++ compiler")
    lib = tmp_path_factory.mktemp("cpp") / "libcohort.so"
    subprocess.run(
        [compiler, "-O2", "-shared", "-fPIC", f"-I{KERNELS}", str(ROOT / "tests/cpp/cohort_host.cpp"), "-o", str(lib)],
        check=True,
    )
    return ctypes.CDLL(str(lib))


def host_solve(lib, driver, stock_driven, kind, p1, p2, dt, offset, correct):
    n, s = driver.shape
    out = [np.zeros((n, s)) for _ in range(3)]
    negative = np.zeros(s, dtype=np.int32)
    dp = ctypes.POINTER(ctypes.c_double)
    lib.cohort_solve_host(
        ctypes.c_int(n),
        ctypes.c_int(s),
        ctypes.c_int(int(stock_driven)),
        ctypes.c_int(KINDS[kind]),
        np.ascontiguousarray(p1).ctypes.data_as(dp),
        np.ascontiguousarray(p2).ctypes.data_as(dp),
        ctypes.c_double(dt),
        ctypes.c_double(offset),
        ctypes.c_int(int(correct)),
        np.ascontiguousarray(driver).ctypes.data_as(dp),
        *(a.ctypes.data_as(dp) for a in out),
        negative.ctypes.data_as(ctypes.POINTER(ctypes.c_int)),
    )
    return (*out, negative)


def random_case(kind: str, rng: np.random.Generator, s: int = 64):
    mean = rng.uniform(1.0, 6.0, s)
    std = mean * rng.uniform(0.1, 0.5, s)
    if kind == "weibull":
        return {"shape": rng.uniform(1.0, 5.0, s), "scale": mean}, (lambda p: (p["shape"], p["scale"]))
    if kind == "fixed":
        return {"mean": mean}, (lambda p: (p["mean"], np.zeros(s)))
    return {"mean": mean, "std": std}, (lambda p: (p["mean"], p["std"]))


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("convention", ["end", "middle"])
@pytest.mark.parametrize(("stock_driven", "policy"), [(False, "correct"), (True, "correct"), (True, "allow")])
def test_host_build_equals_numpy(host_lib, kind, convention, stock_driven, policy):
    rng = np.random.default_rng(zlib.crc32(f"{kind}{convention}{stock_driven}{policy}".encode()))
    n, s, dt = 31, 64, 1.0
    params, pair = random_case(kind, rng, s)
    if stock_driven:  # growing on the whole, with dips that make some inflows negative
        driver = np.cumsum(rng.uniform(-40, 100, (n, s)), axis=0) + 1000
    else:
        driver = rng.uniform(0, 100, (n, s))
    rows = SurvivalRows(kind, {k: v[None, :] for k, v in params.items()}, n, dt, convention, NUMPY)
    want = solve(driver, stock_driven, rows, negative_inflow=policy)
    inflow, stock, outflow, negative = host_solve(
        host_lib,
        driver,
        stock_driven,
        kind,
        *pair(params),
        dt,
        0.5 if convention == "middle" else 0.0,
        policy == "correct",
    )
    scale = np.abs(driver).max()
    np.testing.assert_allclose(inflow, want.inflow, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(stock, want.stock, rtol=1e-12, atol=1e-12 * scale)
    np.testing.assert_allclose(outflow, want.outflow, rtol=1e-12, atol=1e-11 * scale)
    np.testing.assert_array_equal(negative, want.negative_inflow_steps)
