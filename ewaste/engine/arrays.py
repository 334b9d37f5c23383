"""Array namespaces: what the engine computes on (NumPy, or CuPy handed in by `backend`)."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np
import scipy.special


@dataclass(frozen=True)
class Backend:
    """An array namespace with the special functions the survival functions need.

    name: "numpy", "cpu" (NumPy arrays, the recursion compiled for this machine: `host`) or "cupy".
    erfc, gammaln, gammainc, gammaincc: the special functions of its namespace (SciPy's, or CuPy's cupyx).
    precision: of the compiled engines' arithmetic, "float64" or "float32"; inputs and results stay
    float64 arrays.
    """

    name: str
    xp: ModuleType
    erfc: Any
    precision: str = "float64"
    gammaln: Any = scipy.special.gammaln  # for Weibull tail integrals (lifetime.tail_integrals)
    gammainc: Any = scipy.special.gammainc
    gammaincc: Any = scipy.special.gammaincc

    def asnumpy(self, a: Any) -> np.ndarray:
        """Copy an array of this backend to host memory (explicitly, in one place)."""
        if self.name == "cupy" and not isinstance(a, np.ndarray):
            return a.get()
        return np.asarray(a)


NUMPY = Backend("numpy", np, scipy.special.erfc)
CPU = Backend("cpu", np, scipy.special.erfc)
