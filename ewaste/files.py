"""Files written safely: claimed by one run at a time, written beside the target and renamed into place;
never a half-written or overwritten file.

A claim is `.NAME.claim` beside the target, created exclusively (a hard link to a staged file, which
fails if the name exists, so the claim appears whole; O_CREAT | O_EXCL where there are no links) and
locked with `flock` while the run holds it; it records the owner's PID, host and start time. The
kernel drops the lock when its process dies, even by SIGKILL, so a claim whose lock is free on this
host is stale and the next run takes it over, holding the stale file open and locked while it
replaces it (so no other run can take it over too, and its inode cannot be reused meanwhile). Not
`filelock`: its flock lock leaves its file beside every output after every run, its soft lock judges
staleness by inode number and age (which has let two runs hold one lock, GHSA-fq56-3cx3-fjxp), and
neither says who holds the file.
"""

from __future__ import annotations

import errno
import glob
import json
import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from .errors import EwasteError, InputError

try:
    import fcntl
except ImportError:  # not on Windows: claims then go by the owner's PID alone
    fcntl = None

LOW_SPACE = 16 * 2**20  # bytes free under which a failed write is put down to a full disk
_held: dict[str, list[int]] = {}  # claims this process holds: target -> [holding thread, depth]
_held_lock = threading.Lock()


def atomic_write(path: str | Path, write: Callable[[str], None], overwrite: bool = False) -> None:
    """Claim `path`, call `write(tmp)` on a temporary file beside it, then rename it into place.

    Raises InputError (exit code 2) if `path` exists (without `overwrite`), its folder does not
    exist, another run is writing it, or the write fails (no space left, no permission); the
    temporary file is removed whatever happens.
    """
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(str(path), None, "the folder does not exist")
    with claim(path):
        if path.exists() and not overwrite:
            raise InputError(str(path), None, "exists; pass --overwrite to replace it")
        tmp = staging(path)
        try:
            write(str(tmp))
            os.replace(tmp, path)
        except Exception as exc:
            message = write_failure(exc, path.parent)
            if message is None:
                raise
            raise InputError(str(path), None, message) from None
        finally:
            if tmp.exists():
                tmp.unlink()


def staging(path: str | Path, directory: bool = False) -> Path:
    """A new, empty temporary file (or folder) `.NAME.XXXX.part` beside `path`, as readable as an
    ordinary new file; the claim on `path` removes those a killed run left behind.

    Raises InputError if the folder does not take new files.
    """
    path = Path(path)
    try:
        if directory:
            tmp = tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
        else:
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            os.close(fd)
        os.chmod(tmp, (0o777 if directory else 0o666) & ~_umask())  # not mkstemp's 0600
    except OSError as exc:
        raise InputError(str(path), None, write_failure(exc, path.parent)) from None
    return Path(tmp)


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def write_failure(exc: BaseException, folder: str | Path) -> str | None:
    """What a failed write means for the user, in a few words; None for an error that is no write's.

    An OSError says it itself (ENOSPC: no space left); libraries that lose the errno (HDF5 says
    only "HDF error") are put down to a full disk when the folder has almost no space left.
    """
    if isinstance(exc, EwasteError):  # ewaste's own errors say what they mean
        return None
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return "no space left on device" if exc.errno == errno.ENOSPC else "disk quota exceeded"
    if isinstance(exc, OSError):
        return f"cannot write here ({exc.strerror or exc.__class__.__name__})"
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        return None
    if free < LOW_SPACE:
        return f"no space left on device ({free // 1024} kB free after: {exc.__class__.__name__}: {exc})"
    return None


@contextmanager
def claim(path: str | Path) -> Iterator[None]:
    """Hold `path` for this run until the block ends, however it ends (an error, Ctrl-C, a signal
    turned into an exception); the thread that holds it may claim it again (nested) for free.
    Temporary files that a killed run left beside `path` are removed once it is held.

    Raises InputError (exit code 2) if another run holds it (naming that run, and the claim file
    to delete where ewaste cannot tell whether that run is alive), or its folder does not exist or
    takes no files.
    """
    if not Path(path).parent.is_dir():
        raise InputError(str(path), None, "the folder does not exist")
    target, me = _target(path), threading.get_ident()
    with _held_lock:
        held = _held.setdefault(str(target), [me, 0])
        if held[0] == me:
            held[1] += 1
    if held[0] != me:
        raise InputError(str(path), None, "another run in this process is writing this file")
    try:
        if held[1] > 1:
            yield
            return
        fd = _acquire(_claim_file(target), str(path))
        try:
            _remove_leftovers(target)
            yield
        finally:
            _release(_claim_file(target), fd)
    finally:
        with _held_lock:
            held[1] -= 1
            if not held[1]:
                del _held[str(target)]


def _target(path: str | Path) -> Path:
    """The name a claim guards: its folder resolved (one claim, however the folder is reached)."""
    path = Path(path)
    return Path(os.path.realpath(path.parent)) / path.name


def _claim_file(target: Path) -> Path:
    return target.with_name(f".{target.name}.claim")


def _acquire(claim_file: Path, shown: str) -> int:
    """Create the claim file, or take it over from a dead run; the descriptor holding its lock."""
    for _ in range(10):  # a claim released or replaced while looked at: look again
        try:
            return _create(claim_file, shown)
        except FileExistsError:
            pass
        fd = _take_over(claim_file, shown)
        if fd is not None:
            return fd
    raise InputError(shown, None, "another run is writing this file (its claim keeps changing)")


def _create(claim_file: Path, shown: str) -> int:
    """The claim file, appearing whole and already locked (a hard link to a staged file).

    Raises FileExistsError if it exists, InputError if the folder takes no files."""
    fd, staged = _staged_record(claim_file, shown)
    try:
        os.link(staged, claim_file)
    except FileExistsError:
        os.close(fd)
        raise
    except OSError:  # a file system without hard links: create it in place
        os.close(fd)
        fd = _create_in_place(claim_file, shown)
    except BaseException:
        os.close(fd)
        raise
    finally:
        with suppress(OSError):
            os.unlink(staged)
    return fd


def _create_in_place(claim_file: Path, shown: str) -> int:
    """The claim file made with O_EXCL, then locked and written (a claim read before it is written
    is taken for a live one)."""
    try:
        fd = os.open(claim_file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
        raise
    except OSError as exc:
        raise InputError(shown, None, write_failure(exc, claim_file.parent)) from None
    try:
        _lock(fd, wait=True)
        os.write(fd, _record())
    except BaseException:
        os.close(fd)
        os.unlink(claim_file)
        raise
    return fd


def _take_over(claim_file: Path, shown: str) -> int | None:
    """Replace a stale claim (its run is dead) with ours; None if it went away meanwhile.

    Raises InputError if its run may be alive."""
    try:
        fd = os.open(claim_file, os.O_RDONLY)
    except FileNotFoundError:
        return None
    except OSError:  # another user's, unreadable: who holds it cannot be told
        raise InputError(shown, None, _busy(None, "unknown", claim_file)) from None
    try:
        lock = _lock(fd, wait=False)
        owner = _read_record(fd)
        if not _same_file(fd, claim_file):
            return None
        if not _stale(lock, owner):
            raise InputError(shown, None, _busy(owner, lock, claim_file))
        ours, staged = _staged_record(claim_file, shown)
        os.replace(staged, claim_file)  # only the holder of the stale claim's lock gets here
        return ours
    finally:
        os.close(fd)


def _staged_record(claim_file: Path, shown: str) -> tuple[int, Path]:
    """A new file beside the claim, locked, holding this run's record.

    Raises InputError (naming `shown`, the path as the user gave it) if the folder takes no files."""
    try:
        fd, staged = tempfile.mkstemp(prefix=f"{claim_file.name}.", suffix=".part", dir=claim_file.parent)
    except OSError as exc:
        raise InputError(shown, None, write_failure(exc, claim_file.parent)) from None
    try:
        os.fchmod(fd, 0o644 & ~_umask())  # others may read who holds the file
        _lock(fd, wait=True)
        os.write(fd, _record())
    except BaseException:
        os.close(fd)
        os.unlink(staged)
        raise
    return fd, Path(staged)


def _record() -> bytes:
    started = time.strftime("%Y-%m-%d %H:%M:%S")
    return (json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": started}) + "\n").encode()


def _read_record(fd: int) -> dict | None:
    """The owner the claim names; None if unreadable (being written, or from something else)."""
    try:
        record = json.loads(os.pread(fd, 4096, 0).decode())
        whole = isinstance(record, dict) and isinstance(record.get("pid"), int) and isinstance(record.get("host"), str)
        return record if whole else None
    except (OSError, ValueError):
        return None


def _lock(fd: int, wait: bool) -> str:
    """Lock a claim file: "locked", "busy" (another live process holds it) or "unsupported"."""
    if fcntl is None:
        return "unsupported"
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
    except BlockingIOError:
        return "busy"
    except OSError:  # a file system without locks (ENOLCK, EOPNOTSUPP)
        return "unsupported"
    return "locked"


def _stale(lock: str, owner: dict | None) -> bool:
    """Whether the run that made a claim is dead: its lock is free (the kernel drops it when a
    process dies), or, where locks are not kept, its PID is gone; only known on its own host."""
    if owner is None or lock == "busy" or owner["host"] != socket.gethostname():
        return False
    return lock == "locked" or not _alive(owner["pid"])


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # alive, someone else's
        return True
    return True


def _busy(owner: dict | None, lock: str, claim_file: Path) -> str:
    """Who holds the file, and how to clear the claim where its owner cannot be seen from here."""
    who = "" if owner is None else f" (pid {owner['pid']} on {owner['host']}, since {owner.get('started', '?')})"
    message = f"another run is writing this file{who}; wait for it to finish"
    if lock != "busy":
        message += f", or, if that run is gone, delete {claim_file}"
    return message


def _same_file(fd: int, path: Path) -> bool:
    try:
        mine, there = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (there.st_dev, there.st_ino)


def _release(claim_file: Path, fd: int) -> None:
    """Remove the claim file (if it is still ours), then drop its lock."""
    try:
        if _same_file(fd, claim_file):
            os.unlink(claim_file)
    except OSError:
        pass
    finally:
        os.close(fd)


def _remove_leftovers(target: Path) -> None:
    """Temporary files and folders of runs killed while they held `target` (`.NAME.*.part`)."""
    for leftover in target.parent.glob(f".{glob.escape(target.name)}.*.part"):
        if leftover.is_dir() and not leftover.is_symlink():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            with suppress(OSError):
                leftover.unlink()
