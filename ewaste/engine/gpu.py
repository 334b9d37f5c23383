"""The GPU engine: kernels/cohort.cu compiled at run time through CuPy and run one thread per scenario.

`solve` is a drop-in for `stockflow.solve`. With CuPy arrays it runs in one launch and returns CuPy
arrays; with NumPy arrays (as `model.evaluate` passes them) it streams the scenarios through the
device in batches sized from the device's free memory, halving a batch that still does not fit, and
returns NumPy arrays, so a grid larger than the device's memory does not stop on an out-of-memory
error. The kernel is compiled once per device (CuPy also caches the binary
on disk); compile errors name the real file and line. CuPy comes from `backend.py`, the only module
that imports it. Before a process uses the kernel, `self_check` runs it against the NumPy engine on a
set of small problems; the backend is refused (or `auto` passes it over) if they differ. Not yet run
on a real GPU by the project: see docs/model.md#backends.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from . import kernel, stockflow
from .arrays import NUMPY, Backend
from .stockflow import CohortFlows, SurvivalRows

MAX_STEPS = 512  # per-thread scratch of the kernel (EW_MAX_STEPS); longer runs use the array engine
THREADS_PER_BLOCK = 128
FREE_MEMORY_SHARE = 0.5  # of the device's free memory, for one batch's arrays
OUTPUTS = (*kernel.SERIES, *kernel.ATTRIBUTE_SERIES, "negative", "first_step", "stock_error", "summary")
MAX_ATTRIBUTES = 24  # per-thread scratch of the kernel (EW_MAX_ATTRIBUTES): the previous attribute stocks and sums
CHECK_TOLERANCE = 1e-10  # self_check: largest difference allowed, as a share of the largest value
CHECK_SCENARIOS, CHECK_STEPS, CHECK_HISTORY = 67, 23, 2
HEADERS = ("cohort.h", "survival.h")  # what cohort.cu includes


def kernel_source() -> tuple[str, tuple[str, ...]]:
    """The CUDA source as compiled (with a #line naming the real file) and the compiler options."""
    path = Path(str(files("ewaste.kernels").joinpath("cohort.cu")))
    code = f'#line 1 "{path}"\n{path.read_text()}'
    # CuPy's binary cache keys on the code and options, not on included files: name the headers' hash.
    headers = b"".join(path.with_name(name).read_bytes() for name in HEADERS)
    header = hashlib.sha256(headers).hexdigest()[:16]
    # --fmad=false: no fused multiply-adds, so the arithmetic matches the NumPy engine's more closely.
    options = (
        "-std=c++17",
        "--fmad=false",
        f"-I{path.parent}",
        f"-DEW_MAX_STEPS={MAX_STEPS}",
        f"-DEW_MAX_ATTRIBUTES={MAX_ATTRIBUTES}",
        f"-DEW_HEADER={header}",
    )
    return code, options


@cache
def _kernel(be: Backend, device: int) -> Any:
    code, options = kernel_source()
    return be.xp.RawModule(code=code, options=options).get_function("cohort_solve")


# The kernel's parameters in order (kernels/cohort.cu), with the NumPy scalar type of each scalar;
# None marks a pointer. tests/test_kernels.py checks this against the CUDA source.
KERNEL_ARGS: tuple[tuple[str, Any], ...] = (
    *((f, np.int32) for f in ("n", "n_history", "stock_driven", "correct", "kind", "by_cohort")),
    *((f, np.int32) for f in ("n_attributes", "n_lags", "single", "installed_base", "averages", "driver_shared")),
    ("stride", np.int64),
    ("dt", np.float64),
    ("offset", np.float64),
    *((f, None) for f in ("p1", "p2", "driver", "attributes", "weights")),
    ("last", np.int64),
    *((f, None) for f in OUTPUTS),
)


def kernel_args(inputs: kernel.Inputs, out: dict[str, Any], unused: Any) -> tuple:
    """The launch arguments: typed scalars, and arrays (`unused` for an absent one, never touched)."""
    values = {f: getattr(inputs, f) for f in inputs.__dataclass_fields__} | {"stride": inputs.s} | out
    args = []
    for name, scalar in KERNEL_ARGS:
        value = values.get(name)
        args.append(scalar(value) if scalar is not None else unused if value is None else value)
    return tuple(args)


def _launch(be: Backend, inputs: kernel.Inputs, out: dict[str, Any]) -> None:
    """One thread per scenario over device arrays."""
    cp = be.xp
    blocks = -(-inputs.s // THREADS_PER_BLOCK)
    if blocks:
        args = kernel_args(inputs, out, cp.zeros(1))
        _kernel(be, cp.cuda.Device().id)((blocks,), (THREADS_PER_BLOCK,), args)


def free_memory(be: Backend) -> int:
    """Bytes free on the current device, counting those CuPy's memory pool holds unused."""
    return int(be.xp.cuda.Device().mem_info[0]) + int(be.xp.get_default_memory_pool().free_bytes())


def batch_size(inputs: kernel.Inputs, free_bytes: int) -> int:
    """Scenarios per batch: the inputs and outputs of a batch fill at most a share of free memory.

    The kernel's per-thread scratch (local memory, about 17 KiB a thread) is reserved by the driver at
    the first launch, which the self-check makes, so it is already out of `free_bytes`; should a batch
    still not fit, `solve` halves the batch and tries again.
    """
    n, k = inputs.n, inputs.n_attributes
    series = len(kernel.SERIES) + len(kernel.ATTRIBUTE_SERIES) * k
    outputs = 3 * series if inputs.weights is not None else n * series
    params = sum(a.nbytes for a in (inputs.p1, inputs.p2)) // max(inputs.s, 1)
    per_scenario = 8 * (n * (1 + k) + outputs + 2) + params
    return max(1, min(inputs.s, int(FREE_MEMORY_SHARE * free_bytes) // per_scenario))


def solve(
    driver: Any,
    stock_driven: bool,
    rows: SurvivalRows,
    attributes: Any = None,
    n_history: int = 0,
    negative_inflow: str = "correct",
    be: Backend | None = None,
    max_batch: int | None = None,
    reduce: tuple[Any, int] | None = None,
    single: bool = False,
    installed_base: bool = False,
    averages: bool = True,
) -> CohortFlows:
    """`stockflow.solve` on the GPU (same arguments; `be` is the cupy backend, default rows.be).

    reduce: as in `host.solve` (summary mode: the kernel sums as it goes, no trajectory is written).
    single: float32 arithmetic (the arrays stay float64).
    """
    be = be or rows.be
    cp = be.xp
    k = 0 if attributes is None else attributes.shape[0]
    if driver.shape[0] > MAX_STEPS or k > MAX_ATTRIBUTES:
        # beyond the kernel's per-thread scratch: the array engine, on rows' backend
        flows = stockflow.solve(
            driver, stock_driven, rows, attributes, n_history, negative_inflow, installed_base, averages
        )
        xp = np if isinstance(flows.inflow, np.ndarray) else cp
        return flows if reduce is None else stockflow.reduce_flows(flows, xp.asarray(reduce[0]), reduce[1], xp)
    on_host = isinstance(driver, np.ndarray)
    xp = np if on_host else cp
    inputs = kernel.prepare(
        driver, stock_driven, rows, attributes, n_history, negative_inflow, xp, reduce, single, installed_base, averages
    )
    if not on_host:
        out = kernel.allocate(inputs, cp)
        _launch(be, inputs, out)
        return kernel.finish(inputs, out)
    out = kernel.allocate(inputs, np)
    size, lo = max_batch or batch_size(inputs, free_memory(be)), 0
    while lo < inputs.s:
        cols = slice(lo, min(lo + size, inputs.s))
        try:
            _run_batch(be, inputs, cols, out)
        except Exception as exc:
            if size == 1 or not out_of_memory(exc):
                raise
            size //= 2  # the device had less room than it reported (another process, fragmentation)
            continue
        lo = cols.stop
    return kernel.finish(inputs, out)


def _run_batch(be: Backend, inputs: kernel.Inputs, cols: slice, out: dict[str, np.ndarray]) -> None:
    """Scenarios `cols` of host inputs through the device, into the host outputs `out`."""
    part = _to_device(inputs, cols, be.xp)
    dev = kernel.allocate(part, be.xp)
    _launch(be, part, dev)
    for name, a in dev.items():
        out[name][..., cols] = be.asnumpy(a)


def out_of_memory(exc: BaseException) -> bool:
    """Whether an error is the device running out of memory: CuPy's allocator (OutOfMemoryError),
    or the driver refusing a launch or an allocation."""
    text = str(exc)
    return type(exc).__name__ == "OutOfMemoryError" or "OUT_OF_MEMORY" in text or "cudaErrorMemoryAllocation" in text


def _to_device(inputs: kernel.Inputs, cols: slice, cp: Any) -> kernel.Inputs:
    """The scenarios `cols` of host inputs, copied to the device as C-contiguous arrays."""
    fields = {f: getattr(inputs, f) for f in inputs.__dataclass_fields__}
    for f in ("p1", "p2", "driver", "attributes"):  # scenario axis last
        a = fields[f]
        if a is not None:
            fields[f] = cp.ascontiguousarray(cp.asarray(a[..., cols] if a.shape[-1] == inputs.s else a))
    if inputs.weights is not None:  # per step, the same for every scenario
        fields["weights"] = cp.asarray(inputs.weights)
    fields["s"] = cols.stop - cols.start
    return kernel.Inputs(**fields)


@cache
def self_check(be: Backend) -> tuple[bool, str]:
    """Whether the kernel gives the NumPy engine's results on this device; never raises.

    Every lifetime type, stock-driven with negative inflows corrected, history and attributes, in
    trajectory mode (host inputs, in three batches) and summary mode (device inputs), float64. A gate
    against a kernel that is wrong on this device or toolkit; tests/test_gpu.py checks to 1e-12.
    Run once per process, on the current device (dask-cuda gives each worker one GPU).
    """
    try:
        worst = max(_check_kind(be, kind) for kind in kernel.KINDS)
    except Exception as exc:  # a compile or launch error, a driver or toolkit problem
        return False, f"the GPU engine failed its self-check ({exc.__class__.__name__}: {exc})"
    if not worst <= CHECK_TOLERANCE:
        return False, f"the GPU engine's results differ from the NumPy engine's by {worst:.2g} of the largest value"
    return True, f"the GPU engine matched the NumPy engine on its self-check (largest difference {worst:.1g})"


def _check_kind(be: Backend, kind: str) -> float:
    """Largest difference from the NumPy engine, as a share of the largest value, for one lifetime type."""
    rng = np.random.default_rng(kernel.KINDS[kind])
    n, s = CHECK_STEPS, CHECK_SCENARIOS
    params, driver, attributes = kernel.sample_problem(kind, kind != "fixed", True, s, rng, n)
    args = (True, SurvivalRows(kind, params, n, 0.5, "middle", NUMPY), attributes, CHECK_HISTORY)
    want = stockflow.solve(driver, *args)
    worst = _difference(want, solve(driver, *args, be=be, max_batch=-(-s // 3)), be)
    last = n - 3
    weights = np.stack([np.arange(n) == last, np.arange(n) <= last]).astype(float)
    xp = be.xp
    rows = SurvivalRows(kind, {k: xp.asarray(v) for k, v in params.items()}, n, 0.5, "middle", be)
    reduced = solve(xp.asarray(driver), True, rows, xp.asarray(attributes), CHECK_HISTORY, reduce=(weights, last))
    return max(worst, _difference(stockflow.reduce_flows(want, weights, last, np), reduced, be))


def _difference(want: CohortFlows, got: CohortFlows, be: Backend) -> float:
    """Largest absolute difference over every output, over the largest absolute value of each; inf
    where the negative-inflow counts differ."""
    if not np.array_equal(be.asnumpy(got.negative_inflow_steps), want.negative_inflow_steps):
        return np.inf
    worst = 0.0
    for name in (*kernel.SERIES, *kernel.ATTRIBUTE_SERIES):
        a, b = getattr(want, name), be.asnumpy(getattr(got, name))
        scale = max(float(np.abs(a).max()), 1e-300)
        worst = max(worst, float(np.nan_to_num(np.abs(b - a).max() / scale, nan=np.inf)))
    return worst
