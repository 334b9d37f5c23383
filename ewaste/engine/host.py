"""The compiled CPU engine: the kernel's C++ maths (kernels/cohort.h) built for this machine.

`solve` is a drop-in for `stockflow.solve` on NumPy arrays. The library is compiled once with the
system C++ compiler ($CXX, else c++, g++ or clang++), cached under $EWASTE_CACHE_DIR (default
~/.cache/ewaste) by a hash of the sources, compiler, flags and CPU, and loaded with ctypes. It runs
blocks of 64 scenarios side by side so that the compiler vectorises across scenarios (with the
vector maths library where the C library has one), on a pool of threads shared by every caller
(ctypes releases the GIL), $EWASTE_THREADS of them (default: the cores this process may use).
Where no compiler works, `status()` says why and ewaste stays on the NumPy engine.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Collection
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from . import kernel
from .stockflow import CohortFlows, SurvivalRows

SOURCES = ("survival.h", "cohort.h", "host.cpp")
FLAGS = ("-O3", "-ffast-math", "-fopenmp-simd", "-std=c++17", "-fPIC")
LINK_FLAGS = ("-shared", "-lm")
ABI_VERSION = 8
MIN_PER_THREAD = 4096  # scenarios; below this one thread is quicker than handing work out
THREADS_VAR, CACHE_VAR = "EWASTE_THREADS", "EWASTE_CACHE_DIR"

_P = ctypes.POINTER(ctypes.c_double)
LOG = logging.getLogger("ewaste")  # the command prints its INFO lines on standard error


INTS = ("n", "n_history", "stock_driven", "correct", "kind", "by_cohort", "n_attributes", "n_lags", "single")
INTS += ("installed_base", "averages", "driver_shared")
SCALARS = (*INTS, "dt", "offset")
ARRAYS = ("p1", "p2", "driver", "attributes")


class Problem(ctypes.Structure):
    """Mirror of ew::Problem in kernels/cohort.h (field for field)."""

    _fields_ = [
        *((f, ctypes.c_int32) for f in INTS),
        ("stride", ctypes.c_int64),
        *((f, ctypes.c_double) for f in ("dt", "offset")),
        *((f, _P) for f in ARRAYS),
        ("weights", _P),
        ("last", ctypes.c_int64),
    ]


class Result(ctypes.Structure):
    """Mirror of ew::Result in kernels/cohort.h."""

    _fields_ = [
        *((f, _P) for f in (*kernel.SERIES, *kernel.ATTRIBUTE_SERIES)),
        ("negative", ctypes.POINTER(ctypes.c_int64)),
        ("first_step", _P),
        ("stock_error", _P),
        ("stride", ctypes.c_int64),
        ("summary", _P),
    ]


def threads() -> int:
    """Threads the engine uses: $EWASTE_THREADS, else the cores this process may run on."""
    env = os.environ.get(THREADS_VAR, "").strip()
    if env:
        if not env.isdigit() or int(env) < 1:
            raise InputError(None, THREADS_VAR, f"must be a whole number of threads >= 1, not {env!r}")
        return int(env)
    return cores()


def cores() -> int:
    """The cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def _compiler() -> list[str] | None:
    """The compiler command: $CXX (which may carry options), else the first of c++, g++, clang++."""
    named = shlex.split(os.environ.get("CXX", ""))
    if named:
        found = shutil.which(named[0])
        return [found, *named[1:]] if found else None
    found = next(filter(None, map(shutil.which, ("c++", "g++", "clang++"))), None)
    return [found] if found else None


def _cpu_id() -> str:
    """What -march=native depends on: the CPU model and feature flags (a shared cache may serve
    several kinds of machine)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
        return " ".join(line for line in info.splitlines() if line.startswith(("model name", "flags")))[:8000]
    except OSError:
        return f"{platform.machine()} {platform.processor()}"


def _cache_dir() -> Path:
    env = os.environ.get(CACHE_VAR)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "ewaste"


def _build(compiler: list[str], arch_flags: tuple[str, ...]) -> Path:
    """Compile the host library (once per sources, compiler and flags); returns its path."""
    kernels = files("ewaste.kernels")
    text = {name: kernels.joinpath(name).read_text() for name in SOURCES}
    version = subprocess.run([*compiler, "--version"], capture_output=True, text=True, timeout=60).stdout
    key = hashlib.sha256(
        repr((text, compiler, version, FLAGS, LINK_FLAGS, arch_flags, _cpu_id(), ABI_VERSION)).encode()
    ).hexdigest()[:16]
    out = _cache_dir() / f"libewaste-cohort-{key}.so"
    if out.exists():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    LOG.info("building the compiled CPU engine for this machine (once; about 15 s) ...")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for name, body in text.items():
            Path(tmp, name).write_text(body)
        obj, built = Path(tmp, "host.o"), Path(tmp, out.name)
        # Compile with fast maths but link without it: linking with -ffast-math would add code that
        # flushes subnormals to zero in the whole process as soon as the library loads.
        for cmd in (
            [*compiler, *FLAGS, *arch_flags, f"-I{tmp}", "-c", str(Path(tmp, "host.cpp")), "-o", str(obj)],
            [*compiler, *LINK_FLAGS, str(obj), "-o", str(built)],
        ):
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            if done.returncode != 0:
                errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
                raise RuntimeError("; ".join(errors[:3]) or done.stderr.strip()[-300:] or "compile failed")
        handle, staged = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.")
        with os.fdopen(handle, "wb") as f:
            f.write(built.read_bytes())
        os.chmod(staged, 0o755)
        os.replace(staged, out)  # atomic: another thread or process building the same library is harmless
    LOG.info("built the compiled CPU engine in %.0f s (cached in %s)", time.perf_counter() - started, out.parent)
    return out


@cache
def _library() -> tuple[Any, str]:
    """(the loaded library or None, what was built or why not). Never raises."""
    compiler = _compiler()
    if compiler is None:
        named = os.environ.get("CXX")
        hint = f"$CXX={named} is not on PATH" if named else "set $CXX or install g++ or clang++"
        return None, f"no C++ compiler found ({hint})"
    why = ""
    for arch in (("-march=native",), ()):  # the machine's full vector width, else the compiler's default
        try:
            path = _build(compiler, arch)
            lib = ctypes.CDLL(str(path))
            if lib.ew_abi_version() != ABI_VERSION:
                raise RuntimeError(f"stale library {path}")
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            why = f"{exc.__class__.__name__}: {exc}"
            continue
        lib.ew_solve_range.argtypes = [
            ctypes.POINTER(Problem),
            ctypes.POINTER(Result),
            ctypes.c_int64,
            ctypes.c_int64,
        ]
        lib.ew_solve_range.restype = ctypes.c_int
        return lib, f"{Path(compiler[0]).name} {' '.join(arch) or '(default arch)'}"
    return None, f"the C++ engine did not build with {' '.join(compiler)} ({why})"


def status() -> tuple[bool, str]:
    """Whether the compiled CPU engine can run here, and what it is or why not. Never raises."""
    lib, what = _library()
    if lib is None:
        return False, what
    try:
        return True, f"{what}, {threads()} thread{'s' if threads() > 1 else ''}"
    except InputError as exc:
        return True, f"{what}, {exc}"


_pool_lock = threading.Lock()


@cache
def _pool_of(n: int) -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=n, thread_name_prefix="ewaste-cpu")


def _pool(n: int) -> ThreadPoolExecutor:
    """One pool per thread count for the whole process (created once, also when threads race)."""
    with _pool_lock:
        return _pool_of(n)


if hasattr(os, "register_at_fork"):  # a forked child has the pool object but not its threads
    os.register_at_fork(after_in_child=_pool_of.cache_clear)


def _ptr(a: np.ndarray | None) -> Any:
    return None if a is None else a.ctypes.data_as(_P)


def solve(
    driver: Any,
    stock_driven: bool,
    rows: SurvivalRows,
    attributes: Any = None,
    n_history: int = 0,
    negative_inflow: str = "correct",
    reduce: tuple[np.ndarray, int] | None = None,
    single: bool = False,
    installed_base: bool = False,
    averages: bool = True,
    series: Collection[str] | None = None,
) -> CohortFlows:
    """`stockflow.solve`, computed by the compiled engine (same arguments, same results to ~1e-14).

    reduce: (weights (2, N), last): return `stockflow.reduce_flows` of the flows instead, summed as
    the recursion goes, without ever writing the trajectories. single: float32 arithmetic.
    series: the trajectories to return (names of `kernel.SERIES` / `kernel.ATTRIBUTE_SERIES`; None:
    all); the others are computed but never written (None in the result), which saves the first
    touch of their memory. Stock-driven trajectories without history in float64 return the given
    stock (read-only) as the stock, which the recursion reaches to rounding (its `stock_error`,
    checked by the caller), rather than writing a copy of it.
    """
    inputs = kernel.prepare(
        driver, stock_driven, rows, attributes, n_history, negative_inflow, np, reduce, single, installed_base, averages
    )
    given = stock_driven and not n_history and not single and reduce is None
    skip = set() if series is None else {*kernel.SERIES, *kernel.ATTRIBUTE_SERIES} - set(series)
    with _small_pages():
        out = kernel.allocate(inputs, np, skip | ({"stock"} if given else set()))
    compute(inputs, out)
    if given and "stock" not in skip:
        out["stock"] = np.broadcast_to(inputs.driver, (inputs.n, inputs.s))  # a read-only view
    return kernel.finish(inputs, out)


_madvise = getattr(getattr(np, "_core", None), "multiarray", None)
_madvise_lock = threading.Lock()


@contextmanager
def _small_pages() -> Any:
    """Allocate without NumPy's transparent-huge-page advice, as a C program's malloc does.

    The engine writes its outputs once, straight from the recursion (streaming stores): their cost
    is the first touch of each page. On virtual machines that back guest memory lazily, advised huge
    pages come from memory the guest never touched and fault at a fraction of the speed of the small
    pages it recycles (on the development machine 0.3 against 1.5 GB/s: a 1e6 x 31 trajectory run
    took 1.5 s with the advice, 0.7-1.0 s without; benchmarks/RESULTS.md). Only the allocation is
    inside the lock; NumPy's setting is restored after it.
    """
    setter = getattr(_madvise, "_set_madvise_hugepage", None)
    if setter is None:
        yield
        return
    with _madvise_lock:
        before = setter(False)
        try:
            yield
        finally:
            setter(before)


def compute(inputs: kernel.Inputs, out: dict[str, np.ndarray]) -> None:
    """Run the library on prepared inputs, writing the arrays of `kernel.allocate`."""
    lib, why = _library()
    if lib is None:
        raise RuntimeError(why)
    scalars = {f: getattr(inputs, f) for f in SCALARS}
    arrays = {f: _ptr(getattr(inputs, f)) for f in (*ARRAYS, "weights")}
    problem = Problem(**scalars, stride=inputs.s, **arrays, last=inputs.last)
    result = Result(
        *(_ptr(out.get(f)) for f in (*kernel.SERIES, *kernel.ATTRIBUTE_SERIES)),
        out["negative"].ctypes.data_as(ctypes.POINTER(ctypes.c_int64)),
        _ptr(out["first_step"]),
        _ptr(out["stock_error"]),
        inputs.s,
        _ptr(out.get("summary")),
    )
    _run(lib, problem, result, inputs.s)


def _run(lib: Any, problem: Problem, result: Result, s: int) -> None:
    """Split the scenarios into one range per thread (whole blocks of 64) and solve them."""
    n_threads = max(1, min(threads(), s // MIN_PER_THREAD))
    step = -(-s // n_threads // 64) * 64 or 64
    bounds = [(lo, min(lo + step, s)) for lo in range(0, s, step)]
    pr, rr = ctypes.byref(problem), ctypes.byref(result)
    if len(bounds) == 1:
        codes = [lib.ew_solve_range(pr, rr, 0, s)] if s else []
    else:
        codes = list(_pool(threads()).map(lambda b: lib.ew_solve_range(pr, rr, *b), bounds))
    if any(codes):
        raise MemoryError("the compiled engine could not allocate its scratch memory")
