"""Array backends. The only module that imports CuPy; everything else asks it for a namespace."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from functools import cache
from types import ModuleType
from typing import Any

import numpy as np
import scipy.special

from .errors import InputError

BACKENDS = ("auto", "numpy", "cpu", "cupy")
ENV_VAR = "EWASTE_BACKEND"
PRECISIONS = ("float64", "float32")
PRECISION_VAR = "EWASTE_PRECISION"


@dataclass(frozen=True)
class Backend:
    """An array namespace with the special functions the survival functions need."""

    name: str
    xp: ModuleType
    erfc: Any
    precision: str = "float64"  # of the compiled engines' arithmetic; inputs and results stay float64

    def asnumpy(self, a: Any) -> np.ndarray:
        """Copy an array of this backend to host memory (explicitly, in one place)."""
        if self.name == "cupy" and not isinstance(a, np.ndarray):
            return a.get()
        return np.asarray(a)


NUMPY = Backend("numpy", np, scipy.special.erfc)
CPU = Backend("cpu", np, scipy.special.erfc)  # NumPy arrays; the recursion compiled for this machine (host.py)


def cpu_status() -> tuple[bool, str]:
    """Whether the compiled CPU engine runs here and, if not, why (builds it on first call)."""
    from . import host  # noqa: PLC0415 - host imports the engine, which imports this module

    return host.status()


def _cpu_threads() -> int:
    """The compiled CPU engine's threads ($EWASTE_THREADS, checked: an InputError if bad)."""
    from . import host  # noqa: PLC0415 - as in cpu_status

    return host.threads()


@cache
def cupy_status() -> tuple[bool, str]:
    """Whether CuPy can run here and, if not, why. Probed once; never raises."""
    try:
        import cupy  # noqa: PLC0415 - optional dependency, imported only here
    except Exception as exc:  # ImportError, or a broken CUDA installation
        return False, f"CuPy is not installed ({exc.__class__.__name__}: {exc}); pip install 'ewaste[gpu]'"
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            return False, "CuPy found no CUDA device"
        cupy.zeros(1).sum().item()
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
    except Exception as exc:  # no driver: cudaErrorInsufficientDriver and friends
        return False, f"CuPy cannot use a GPU here ({exc.__class__.__name__}: {exc})"
    name = props["name"].decode() if isinstance(props["name"], bytes) else str(props["name"])
    return True, (
        f"CuPy {cupy.__version__} on {name} (compute capability {props['major']}.{props['minor']}, "
        f"{props['totalGlobalMem'] / 2**30:.1f} GiB)"
    )


def get_backend(name: str | None = None, precision: str | None = None) -> Backend:
    """The backend named (or from $EWASTE_BACKEND, default "auto"), computing in `precision` (or
    $EWASTE_PRECISION, default "float64").

    auto: CuPy where a GPU is usable and the GPU engine passes its self-check (`gpu_status`), else
    the compiled CPU engine where a C++ compiler builds it, else NumPy. float32 needs a compiled engine.
    """
    name = (name or os.environ.get(ENV_VAR) or "auto").lower()
    if name not in BACKENDS:
        raise InputError(None, "backend", f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    precision = (precision or os.environ.get(PRECISION_VAR) or "float64").lower()
    if precision not in PRECISIONS:
        raise InputError(None, "precision", f"unknown precision {precision!r}; choose one of {', '.join(PRECISIONS)}")
    be = _named_backend(name)
    if precision == "float32" and be.name == "numpy":
        why = "" if name == "numpy" else f" and the cpu backend cannot run here: {cpu_status()[1]}"
        raise InputError(None, "precision", f"float32 needs a compiled engine (--backend cpu or cupy){why}")
    return replace(be, precision=precision)


def gpu_status() -> tuple[bool, str]:
    """Whether the GPU engine runs here: a usable device, and the kernel passing its self-check
    against the NumPy engine (gpu.self_check, run once per process). Never raises."""
    ok, why = cupy_status()
    if not ok:
        return ok, why
    from . import gpu  # noqa: PLC0415 - gpu imports this module

    try:
        checked, how = gpu.self_check(_cupy_backend())
    except Exception as exc:  # cupyx missing or broken
        checked, how = False, f"CuPy's special functions cannot be loaded ({exc.__class__.__name__}: {exc})"
    return checked, f"{why}; {how}"


def _named_backend(name: str) -> Backend:
    if name == "numpy":
        return NUMPY
    if name in ("cupy", "auto"):
        ok, why = gpu_status()
        if ok:
            return _cupy_backend()
        if name == "cupy":
            raise InputError(None, "backend", f"the cupy backend cannot run: {why}")
    ok, why = cpu_status()
    if name == "cpu" and not ok:
        raise InputError(None, "backend", f"the cpu backend cannot run: {why}")
    if not ok:
        return NUMPY
    _cpu_threads()  # refuse a bad $EWASTE_THREADS now, not as an error of the first fleet
    return CPU


def describe(be: Backend) -> str:
    """One line on what runs the engine: the library version, or how the CPU engine was built."""
    if be.name == "cpu":
        return f"compiled CPU engine ({cpu_status()[1]}, {be.precision})"
    return cupy_status()[1] if be.name == "cupy" else f"NumPy {np.__version__}"


@cache
def _cupy_backend() -> Backend:
    """The same array engine on CuPy (element-wise kernels generated by CuPy)."""
    import cupy  # noqa: PLC0415
    import cupyx.scipy.special  # noqa: PLC0415

    return Backend("cupy", cupy, cupyx.scipy.special.erfc)
