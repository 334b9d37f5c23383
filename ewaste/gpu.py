"""The GPU engine: kernels/cohort.cu compiled at run time through CuPy and run one thread per scenario.

`solve` is a drop-in for `stockflow.solve`. With CuPy arrays it runs in one launch and returns CuPy
arrays; with NumPy arrays it streams the scenarios through the device in batches sized from the
device's free memory and returns NumPy arrays, so a grid larger than the device's memory does not
stop on an out-of-memory error. The kernel is compiled once per device (CuPy also caches the binary
on disk); compile errors name the real file and line. CuPy comes from `backend.py`, the only module
that imports it. Not yet verified on a GPU: see docs/model.md#backends.
"""

from __future__ import annotations

import hashlib
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import numpy as np

from . import kernel, stockflow
from .backend import Backend
from .stockflow import CohortFlows, SurvivalRows

MAX_STEPS = 512  # per-thread scratch of the kernel (EW_MAX_STEPS); longer runs use the array engine
THREADS_PER_BLOCK = 128
FREE_MEMORY_SHARE = 0.5  # of the device's free memory, for one batch's arrays
OUTPUTS = ("inflow", "stock", "outflow", "attr_stock", "attr_outflow", "negative", "first_step", "summary")
MAX_ATTRIBUTES = 24  # per-thread scratch of the kernel in summary mode (EW_MAX_ATTRIBUTES)


def kernel_source() -> tuple[str, tuple[str, ...]]:
    """The CUDA source as compiled (with a #line naming the real file) and the compiler options."""
    path = Path(str(files("ewaste.kernels").joinpath("cohort.cu")))
    code = f'#line 1 "{path}"\n{path.read_text()}'
    # CuPy's binary cache keys on the code and options, not on included files: name cohort.h's hash.
    header = hashlib.sha256(path.with_name("cohort.h").read_bytes()).hexdigest()[:16]
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
    *((f, np.int32) for f in ("n_attributes", "n_lags", "single")),
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
    """Free bytes on the current device."""
    return int(be.xp.cuda.Device().mem_info[0])


def batch_size(inputs: kernel.Inputs, free_bytes: int) -> int:
    """Scenarios per batch: the inputs and outputs of a batch fill at most a share of free memory."""
    n, k = inputs.n, inputs.n_attributes
    outputs = 3 * (3 + 2 * k) if inputs.weights is not None else n * (3 + 2 * k)
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
) -> CohortFlows:
    """`stockflow.solve` on the GPU (same arguments; `be` is the cupy backend, default rows.be).

    reduce: as in `host.solve` (summary mode: the kernel sums as it goes, no trajectory is written).
    single: float32 arithmetic (the arrays stay float64).
    """
    be = be or rows.be
    cp = be.xp
    k = 0 if attributes is None else attributes.shape[0]
    if driver.shape[0] > MAX_STEPS or (reduce is not None and k > MAX_ATTRIBUTES):
        # beyond the kernel's per-thread scratch: the array engine, on rows' backend
        flows = stockflow.solve(driver, stock_driven, rows, attributes, n_history, negative_inflow)
        xp = np if isinstance(flows.inflow, np.ndarray) else cp
        return flows if reduce is None else stockflow.reduce_flows(flows, xp.asarray(reduce[0]), reduce[1], xp)
    on_host = isinstance(driver, np.ndarray)
    xp = np if on_host else cp
    inputs = kernel.prepare(driver, stock_driven, rows, attributes, n_history, negative_inflow, xp, reduce, single)
    if not on_host:
        out = kernel.allocate(inputs, cp)
        _launch(be, inputs, out)
        return kernel.finish(inputs, out)
    out = kernel.allocate(inputs, np)
    size = max_batch or batch_size(inputs, free_memory(be))
    for lo in range(0, inputs.s, size):
        part = _to_device(inputs, slice(lo, min(lo + size, inputs.s)), cp)
        dev = kernel.allocate(part, cp)
        _launch(be, part, dev)
        for name, a in dev.items():
            out[name][..., lo : lo + part.s] = be.asnumpy(a)
        del dev, part  # free the batch before the next one
    return kernel.finish(inputs, out)


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
