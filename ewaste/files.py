"""Files written safely: a temporary file beside the target, renamed into place; never a half-written or
overwritten file."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import InputError


def atomic_write(path: str | Path, write: Callable[[str], None], overwrite: bool = False) -> None:
    """Call `write(tmp)` on a temporary file beside `path`, then rename it into place."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise InputError(str(path), None, "exists; pass --overwrite to replace it")
    if not path.parent.is_dir():
        raise InputError(str(path), None, "the folder does not exist")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError as exc:
        raise InputError(str(path), None, f"cannot write here ({exc.strerror or exc.__class__.__name__})") from None
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    try:
        os.chmod(tmp, 0o666 & ~umask)  # as an ordinary new file would be, not mkstemp's 0600
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(str(path), None, f"cannot write here ({exc.strerror or exc.__class__.__name__})") from None
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
