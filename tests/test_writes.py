"""Faults during a write: two runs on one output, SIGKILL, SIGTERM and SIGHUP, a full disk.

Runs are real `python -m ewaste.cli` processes and real signals; where a run must be caught in the
middle of a write, a small driver holds that write open until the test releases it, so that what
is tested never depends on timing. A full disk is a real tmpfs where the machine lets a test mount
one (a user and mount namespace); everywhere, the low-level write is also made to fail with ENOSPC.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import xarray as xr

import ewaste
from ewaste.cli import main
from ewaste.files import claim
from ewaste.inputs import catalogue

DEFAULT = catalogue.bundled()["default-sweep"]
ZARR = ["-q", "--summary", "--memory-limit", "20kB"]  # 12 chunks of the default sweep, as planned today

DRIVER = """
import os, signal, sys, time
from pathlib import Path
from types import SimpleNamespace

ready, release, at = Path(os.environ["HOLD_READY"]), Path(os.environ["HOLD_RELEASE"]), os.environ["HOLD_AT"]

def hold():
    ready.touch()
    while not release.exists():
        time.sleep(0.02)

def after(owner, name, then):
    real = getattr(owner, name)
    def wrapper(*args, **kwargs):
        out = real(*args, **kwargs)
        then(args)
        return out
    setattr(owner, name, wrapper)

if at == "netcdf":
    import xarray
    after(xarray.Dataset, "to_netcdf", lambda args: hold())  # the temporary file written in full
elif at == "csv":
    from ewaste.outputs import writers
    after(writers, "_write_csv", lambda args: hold())
elif at == "chunk":
    from ewaste.scale import zarr
    # every chunk waits once written, so that the other thread cannot finish the store meanwhile
    after(zarr, "_write_block", lambda args: hold())
elif at == "set-up":
    import xarray
    kill = lambda args: str(args[1]).endswith(".part") and os.kill(os.getpid(), signal.SIGKILL)
    after(xarray.Dataset, "to_zarr", kill)  # killed with the store's skeleton written, not renamed
sys.argv = ["ewaste", *sys.argv[1:]]
from ewaste.cli import main
main()
"""


@pytest.fixture(scope="module")
def reference() -> dict[str, xr.Dataset]:
    grid = ewaste.load_grid(DEFAULT)
    return {"full": ewaste.evaluate(grid), "summary": ewaste.evaluate(grid, summary=True)}


def ewaste_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ewaste.cli", *args], capture_output=True, text=True)


class Held:
    """A run of `ewaste` whose write at `at` waits, once it has begun, until `release()`."""

    def __init__(self, tmp_path: Path, at: str, *args: str):
        self.ready, self.go = tmp_path / f"ready-{at}", tmp_path / f"release-{at}"
        self.ready.unlink(missing_ok=True)
        self.go.unlink(missing_ok=True)
        driver = tmp_path / "driver.py"
        driver.write_text(DRIVER)
        env = {**os.environ, "HOLD_READY": str(self.ready), "HOLD_RELEASE": str(self.go), "HOLD_AT": at}
        self.proc = subprocess.Popen(
            [sys.executable, str(driver), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )

    def wait_ready(self) -> None:
        wait_for(self.ready, self.proc)

    def release(self) -> tuple[int, str]:
        self.go.touch()
        _, err = self.proc.communicate()
        return self.proc.returncode, err


def wait_for(path: Path, proc: subprocess.Popen) -> None:
    """Until `path` exists; fails if the process ends first."""
    while not path.exists():
        if proc.poll() is not None:
            pytest.fail(f"the run ended before {path.name} appeared: {proc.stderr.read()}")
        time.sleep(0.01)


def assert_store(path: Path, expected: xr.Dataset) -> None:
    """The store holds the results computed in memory, exactly."""
    # read without dask: after a write made to fail in this process, dask's threads reading through
    # zarr's event loop once waited forever (a test-process artefact; a fresh process reads fine)
    store = xr.open_zarr(path, chunks=None).load()
    xr.testing.assert_equal(store[list(expected.data_vars)].drop_attrs(), expected.drop_attrs())


def one_line(stderr: str) -> str:
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


def stray(folder: Path, name: str) -> list[str]:
    """Temporary files and claims of `name` left in `folder`."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith(f".{name}."))


def in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """`ewaste ARGS` in this process (so that a write can be made to fail): exit code and stderr."""
    capsys.readouterr()
    monkeypatch.setattr(sys, "argv", ["ewaste", *args])
    try:
        main()
        code = 0
    except SystemExit as exc:
        code = exc.code
    return code, capsys.readouterr().err


# -- two runs, one output ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix, at", [(".nc", "netcdf"), (".csv", "csv")])
def test_a_second_run_on_the_same_file_is_refused(suffix: str, at: str, reference, tmp_path: Path):
    out = tmp_path / f"same{suffix}"
    first = Held(tmp_path, at, "run", "default-sweep", "-q", "--out", str(out))
    first.wait_ready()
    second = ewaste_cli("run", "recycling-levers", "-q", "--overwrite", "--out", str(out))
    assert second.returncode == 2
    assert one_line(second.stderr).startswith(f"ewaste: error: {out}: another run is writing this file (pid ")
    code, err = first.release()
    assert code == 0, err
    assert stray(tmp_path, out.name) == []
    if suffix == ".nc":
        with xr.open_dataset(out) as got:
            assert got.attrs["title"] == "default-sweep"
            xr.testing.assert_equal(got.load().drop_attrs(), reference["full"].drop_attrs())
    else:  # the table, and its provenance in the sidecar written with it
        assert out.read_text().startswith("variable,fleet,")
        assert json.loads(Path(f"{out}.json").read_text())["title"] == "default-sweep"


def test_a_second_run_on_the_same_store_is_refused(reference, tmp_path: Path):
    """The store keeps one scenario's attributes and values, never a mix of two runs."""
    out = tmp_path / "same.zarr"
    first = Held(tmp_path, "chunk", "run", "default-sweep", *ZARR, "--out", str(out))
    first.wait_ready()
    second = ewaste_cli("run", "recycling-levers", *ZARR, "--overwrite", "--out", str(out))
    assert second.returncode == 2
    assert "another run is writing this file" in one_line(second.stderr) and str(out) in second.stderr
    code, err = first.release()
    assert code == 0, err
    assert xr.open_zarr(out).attrs["title"] == "default-sweep"
    assert_store(out, reference["summary"])
    assert stray(tmp_path, out.name) == [] and not Path(f"{out}.partial").exists()


@pytest.mark.parametrize("suffix", [".nc", ".zarr"])
def test_two_runs_started_together(suffix: str, tmp_path: Path):
    """The issue's case, with no driver: two scenarios to one output at once; one run wins, whole."""
    out = tmp_path / f"same{suffix}"
    args = ["-q", "--summary", "--out", str(out)]
    runs = [
        subprocess.Popen([sys.executable, "-m", "ewaste.cli", "run", name, *args], stderr=subprocess.PIPE, text=True)
        for name in ("default-sweep", "recycling-levers")
    ]
    errs = [run.communicate()[1] for run in runs]
    codes = [run.returncode for run in runs]
    assert sorted(codes) == [0, 2], errs
    loser = one_line(errs[codes.index(2)])
    assert "another run is writing this file" in loser or "exists; pass --overwrite" in loser
    winner = ("default-sweep", "recycling-levers")[codes.index(0)]
    expected = ewaste.evaluate(ewaste.load_grid(winner), summary=True)
    with xr.open_dataset(out, engine="zarr" if suffix == ".zarr" else "netcdf4") as got:
        assert got.attrs["title"] == winner
        xr.testing.assert_equal(got[list(expected.data_vars)].load().drop_attrs(), expected.drop_attrs())
    assert stray(tmp_path, out.name) == []


def test_two_resumes_of_one_store_after_a_sigkill(reference, tmp_path: Path):
    """A SIGKILLed run leaves a stale claim that the next run takes over; a second resume is refused."""
    out = tmp_path / "r.zarr"
    killed = Held(tmp_path, "chunk", "run", "default-sweep", *ZARR, "--out", str(out))
    killed.wait_ready()
    killed.proc.kill()
    killed.proc.wait()
    assert (tmp_path / ".r.zarr.claim").exists()  # left behind by the killed run
    first = Held(tmp_path, "chunk", "run", "default-sweep", *ZARR, "--out", str(out), "--resume")
    first.wait_ready()
    second = ewaste_cli("run", "default-sweep", *ZARR, "--out", str(out), "--resume")
    assert second.returncode == 2 and "another run is writing this file" in one_line(second.stderr)
    code, err = first.release()
    assert code == 0, err
    assert_store(out, reference["summary"])
    assert stray(tmp_path, out.name) == []


def test_grid_output_is_claimed(tmp_path: Path):
    out = tmp_path / "g.nc"
    with claim(out):
        refused = ewaste_cli("grid", "default-sweep", "-o", str(out))
        assert refused.returncode == 2 and f"{out}: another run is writing this file" in one_line(refused.stderr)
        assert not out.exists()
    assert ewaste_cli("grid", "default-sweep", "-o", str(out)).returncode == 0
    assert ewaste.load_grid(out).sizes["growth"] == 3 and stray(tmp_path, "g.nc") == []


def test_stale_claims(tmp_path: Path):
    """A claim whose process died on this host is taken over (and its temporary files removed); one
    from another host is refused with the file to delete."""
    out = tmp_path / "s.nc"
    code = f"from ewaste.files import claim, staging\nwith claim({str(out)!r}):\n    staging({str(out)!r})\n"
    code += "    import os, signal; os.kill(os.getpid(), signal.SIGKILL)\n"
    assert subprocess.run([sys.executable, "-c", code]).returncode == -signal.SIGKILL
    assert len(stray(tmp_path, "s.nc")) == 2  # its claim and its temporary file
    assert ewaste_cli("run", "default-sweep", "-q", "--out", str(out)).returncode == 0
    assert out.exists() and stray(tmp_path, "s.nc") == []

    other = tmp_path / "o.nc"
    record = {"pid": os.getpid(), "host": "another-host.invalid", "started": "2025-01-01 00:00:00"}
    (tmp_path / ".o.nc.claim").write_text(json.dumps(record))
    refused = ewaste_cli("run", "default-sweep", "-q", "--out", str(other))
    assert refused.returncode == 2
    assert one_line(refused.stderr).endswith(f"if that run is gone, delete {tmp_path / '.o.nc.claim'}")
    assert "another-host.invalid" in refused.stderr and not other.exists()
    (tmp_path / ".o.nc.claim").unlink()
    assert ewaste_cli("run", "default-sweep", "-q", "--out", str(other)).returncode == 0


# -- SIGTERM and SIGHUP ---------------------------------------------------------------------------


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_signal_mid_write_removes_the_temporary_file_and_claim(sig: signal.Signals, tmp_path: Path):
    out = tmp_path / "t.nc"
    run = Held(tmp_path, "netcdf", "run", "default-sweep", "-q", "--out", str(out))
    run.wait_ready()
    assert len(stray(tmp_path, "t.nc")) == 2  # mid-write: the claim and the temporary file
    run.proc.send_signal(sig)
    _, err = run.proc.communicate()
    assert run.proc.returncode == 128 + sig and one_line(err) == f"ewaste: stopped by {sig.name}"
    assert not out.exists() and stray(tmp_path, "t.nc") == []


def test_sigterm_on_a_slow_grid(tmp_path: Path):
    """No driver: the run is stopped (SIGSTOP) as soon as its claim appears, then sent SIGTERM."""
    rates = ", ".join(f"{i / 4000:.5f}" for i in range(1, 2001))
    scenario = tmp_path / "slow.toml"
    scenario.write_text(
        '[scenario]\nstart_year = 2000\nend_year = 2050\n\n[fleets.s]\narchetype = "dgx_h100"\ndriver = "stock"\n'
        'stock = 1000\nlifetime = { type = "lognormal", mean = 4, std = 1 }\n\n'
        f"[recycling]\ncollection_rate = [{rates}]\n"
    )
    out = tmp_path / "slow.nc"
    proc = subprocess.Popen(
        [sys.executable, "-m", "ewaste.cli", "run", str(scenario), "-q", "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(tmp_path / ".slow.nc.claim", proc)
    for sig in (signal.SIGSTOP, signal.SIGTERM, signal.SIGCONT):
        proc.send_signal(sig)
    _, err = proc.communicate()
    assert proc.returncode == 128 + signal.SIGTERM and one_line(err) == "ewaste: stopped by SIGTERM"
    assert not out.exists() and stray(tmp_path, "slow.nc") == []


def test_sigterm_mid_store_keeps_it_for_resume(reference, tmp_path: Path):
    out = tmp_path / "t.zarr"
    run = Held(tmp_path, "chunk", "run", "default-sweep", *ZARR, "--out", str(out))
    run.wait_ready()
    run.proc.send_signal(signal.SIGTERM)
    code, err = run.release()  # the chunk begun is finished before the run stops
    assert code == 128 + signal.SIGTERM and one_line(err) == "ewaste: stopped by SIGTERM"
    assert not out.exists() and Path(f"{out}.partial").is_dir() and stray(tmp_path, "t.zarr") == []
    resumed = ewaste_cli("run", "default-sweep", *ZARR, "--out", str(out), "--resume")
    assert resumed.returncode == 0, resumed.stderr
    assert_store(out, reference["summary"])


# -- a store killed while it is set up -----------------------------------------------------------


def test_store_killed_during_set_up(reference, tmp_path: Path):
    out = tmp_path / "k.zarr"
    killed = Held(tmp_path, "set-up", "run", "default-sweep", *ZARR, "--out", str(out))
    killed.proc.communicate()
    assert killed.proc.returncode == -signal.SIGKILL
    assert not Path(f"{out}.partial").exists()  # the skeleton never took the partial store's name
    assert any(name.endswith(".part") for name in stray(tmp_path, out.name))  # it is in a temporary folder
    resumed = ewaste_cli("run", "default-sweep", *ZARR, "--out", str(out), "--resume")
    assert resumed.returncode == 2 and "--overwrite" in one_line(resumed.stderr)
    again = ewaste_cli("run", "default-sweep", *ZARR, "--out", str(out))
    assert again.returncode == 0, again.stderr
    assert_store(out, reference["summary"])
    assert stray(tmp_path, out.name) == []


def test_resume_refuses_a_store_whose_set_up_never_finished(tmp_path: Path):
    """A partial store with its attributes but not all its variables (as an older version left it)."""
    out = tmp_path / "o.zarr"
    assert ewaste_cli("run", "default-sweep", *ZARR, "--out", str(out)).returncode == 0
    partial = Path(f"{out}.partial")
    os.replace(out, partial)
    (partial / ".zmetadata").unlink()
    shutil.rmtree(partial / "ewaste_generated_target")
    Path(f"{out}.partial-done").mkdir()
    resumed = ewaste_cli("run", "default-sweep", *ZARR, "--out", str(out), "--resume")
    assert resumed.returncode == 2
    assert one_line(resumed.stderr).endswith("stopped before its store was set up; pass --overwrite to start again")
    assert ewaste_cli("run", "default-sweep", *ZARR, "--out", str(out), "--overwrite").returncode == 0
    assert "ewaste_generated_target" in xr.open_zarr(out).data_vars


# -- a full disk ---------------------------------------------------------------------------------


def fail_after(monkeypatch: pytest.MonkeyPatch, owner: object, name: str, writes: int, when=lambda *a: True):
    """The `writes`-th call of owner.name (where `when` holds) and every later one fail with ENOSPC."""
    real, count = getattr(owner, name), [0]

    def write(*args, **kwargs):
        if when(*args):
            count[0] += 1
            if count[0] >= writes:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, write)


@pytest.mark.parametrize("suffix", [".nc", ".csv"])
def test_disk_full_writing_a_file(suffix: str, monkeypatch, capsys, tmp_path: Path):
    from xarray.backends import netCDF4_  # noqa: PLC0415

    from ewaste.outputs import writers  # noqa: PLC0415

    out = tmp_path / f"full{suffix}"
    if suffix == ".nc":  # after some variables are in the temporary file
        fail_after(monkeypatch, netCDF4_.BaseNetCDF4Array, "__setitem__", 5)
    else:
        monkeypatch.setattr(writers, "open", lambda *a, **k: ShortFile(open(*a, **k)), raising=False)
    code, err = in_process(monkeypatch, capsys, "run", "default-sweep", "-q", "--out", str(out))
    assert code == 2 and one_line(err) == f"ewaste: error: {out}: no space left on device"
    assert not out.exists() and stray(tmp_path, out.name) == []
    monkeypatch.undo()
    code, err = in_process(monkeypatch, capsys, "run", "default-sweep", "-q", "--out", str(out))
    assert code == 0 and out.exists(), err


class ShortFile:
    """A text file whose writes fail with ENOSPC once 2000 characters are in."""

    def __init__(self, f):
        self.f, self.written = f, 0

    def write(self, text: str) -> int:
        self.written += len(text)
        if self.written > 2000:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.f.write(text)

    def __getattr__(self, name: str):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


def test_netcdf_error_that_lost_its_errno_on_a_full_disk(monkeypatch, capsys, tmp_path: Path):
    """HDF5 reports a full disk as "NetCDF: HDF error"; with no space left, it is said so."""
    from xarray.backends import netCDF4_  # noqa: PLC0415

    def hdf_error(*args, **kwargs):
        raise RuntimeError("NetCDF: HDF error")

    monkeypatch.setattr(netCDF4_.BaseNetCDF4Array, "__setitem__", hdf_error)
    monkeypatch.setattr(shutil, "disk_usage", lambda folder: SimpleNamespace(total=10**9, used=10**9, free=0))
    out = tmp_path / "h.nc"
    code, err = in_process(monkeypatch, capsys, "run", "default-sweep", "-q", "--out", str(out))
    assert code == 2 and "no space left on device" in one_line(err) and "HDF error" in err
    assert not out.exists() and stray(tmp_path, "h.nc") == []


@pytest.mark.parametrize("then", ["--resume", "--overwrite"])
def test_disk_full_during_chunk_writes(then: str, reference, monkeypatch, capsys, tmp_path: Path):
    from zarr.storage import _local  # noqa: PLC0415

    out = tmp_path / "c.zarr"
    in_partial = lambda path, *a: path.parent.parent.name == "c.zarr.partial"  # noqa: E731 - chunk files
    fail_after(monkeypatch, _local, "_put", 3, in_partial)
    code, err = in_process(monkeypatch, capsys, "run", "default-sweep", *ZARR, "--out", str(out))
    assert code == 2 and one_line(err).startswith(f"ewaste: error: {out}: no space left on device;")
    assert "--resume" in err and not out.exists() and stray(tmp_path, "c.zarr") == []
    monkeypatch.undo()
    code, err = in_process(monkeypatch, capsys, "run", "default-sweep", *ZARR, "--out", str(out), then)
    assert code == 0, err
    assert_store(out, reference["summary"])


def test_disk_full_during_set_up(monkeypatch, capsys, tmp_path: Path):
    from zarr.storage import _local  # noqa: PLC0415

    out = tmp_path / "s.zarr"
    fail_after(monkeypatch, _local, "_put", 10)
    code, err = in_process(monkeypatch, capsys, "run", "default-sweep", *ZARR, "--out", str(out))
    assert code == 2 and one_line(err) == f"ewaste: error: {out}: no space left on device; nothing was written"
    assert sorted(p.name for p in tmp_path.iterdir()) == []


TMPFS = """
import json, os, shutil, subprocess, sys
disk, copy, out = sys.argv[1], sys.argv[2], {}
def run(label, name, *args):
    cmd = [sys.executable, "-m", "ewaste.cli", "run", "default-sweep", "-q", *args]
    p = subprocess.run([*cmd, "--out", os.path.join(disk, name)],
                       capture_output=True, text=True)
    out[label] = [p.returncode, p.stderr, sorted(os.listdir(disk))]
def size(text):
    subprocess.run(["mount", "-o", "remount,size=" + text, disk], check=True)
size("256k")
run("nc", "x.nc")
run("csv", "x.csv")
size("1500k")
run("zarr", "z.zarr", "--memory-limit", "300kB")
size("64m")
run("resume", "z.zarr", "--memory-limit", "300kB", "--resume")
run("nc again", "x.nc")
shutil.copytree(os.path.join(disk, "z.zarr"), copy)
print(json.dumps(out))
"""


def test_disk_full_on_a_real_tmpfs(reference, tmp_path: Path):
    """A real full disk: a small tmpfs in a mount namespace of the test's own (skipped where none)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    script = tmp_path / "tmpfs.py"
    script.write_text(TMPFS)
    unshare = shutil.which("unshare")
    namespace = [unshare, "--user", "--map-root-user", "--mount"]
    probe = [*namespace, "mount", "-t", "tmpfs", "tmpfs", str(disk)]
    if unshare is None or subprocess.run(probe, capture_output=True).returncode != 0:
        pytest.skip("no tmpfs can be mounted here (unshare --user --mount)")
    mounted = f"mount -t tmpfs tmpfs {disk} && exec {sys.executable} {script} {disk} {tmp_path / 'copy.zarr'}"
    done = subprocess.run([*namespace, "sh", "-c", mounted], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    for label, name in (("nc", "x.nc"), ("csv", "x.csv")):
        code, err, left = got[label]
        assert code == 2 and one_line(err).startswith(f"ewaste: error: {disk / name}: no space left on device")
        assert left == []
    code, err, left = got["zarr"]
    assert code == 2 and "no space left on device" in one_line(err) and "--resume" in err
    assert left == ["z.zarr.partial", "z.zarr.partial-done"]  # 1.5 MB holds the set-up, not the chunks
    code, err, left = got["resume"]
    assert code == 0 and left == ["z.zarr"], err
    assert got["nc again"][0] == 0
    assert_store(tmp_path / "copy.zarr", reference["full"])
