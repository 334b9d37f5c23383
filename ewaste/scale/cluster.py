"""Dask clients for scale-out: a local cluster of worker processes, or an existing scheduler."""

from __future__ import annotations

from typing import Any

from ..engine.host import THREADS_VAR
from ..errors import InputError


class dask_client:  # noqa: N801 - used as a context manager, like open()
    """A dask client for `workers` (a local cluster on 127.0.0.1) or `scheduler` (an address); None
    when neither is given. Closes what it started on exit.

    Raises InputError when dask's distributed scheduler is not installed or the scheduler cannot be
    reached.
    """

    def __init__(self, workers: int | None, scheduler: str | None):
        self.workers, self.scheduler, self.client, self.cluster = workers, scheduler, None, None

    def __enter__(self) -> Any:
        if self.workers is None and self.scheduler is None:
            return None
        try:
            from distributed import Client, LocalCluster  # noqa: PLC0415
        except ImportError:
            raise InputError(
                None, "--workers", "needs dask's distributed scheduler: pip install -e '.[dask]'"
            ) from None
        if self.scheduler:
            try:
                self.client = Client(self.scheduler, timeout=10)
            except (OSError, ValueError, TypeError) as exc:
                raise InputError(self.scheduler, "--scheduler", f"cannot reach the scheduler ({exc})") from None
        else:
            self.cluster = LocalCluster(
                n_workers=self.workers,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address=None,
                silence_logs=40,
                env={THREADS_VAR: "1"},  # one chunk per worker process, one core each
            )
            self.client = Client(self.cluster)
        return self.client

    def __exit__(self, *exc: object) -> None:
        if self.client is not None:
            self.client.close()
        if self.cluster is not None:
            self.cluster.close()
