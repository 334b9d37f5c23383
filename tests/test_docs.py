"""The commands and examples of README.md and docs/*.md work as the text says.

- Every command of a ```bash block runs with this checkout's `ewaste` and exits 0, except those in
  SKIP (each with its reason; an entry that no longer matches a documented command fails).
- Every ```python block runs in a subprocess and exits 0.
- Every error line quoted in docs/scenario-format.md#errors is printed, exactly, with exit code 2, by
  the input of ERRORS.
- Every ```toml example that holds a fleet is a valid scenario.

Each bash block runs in a fresh folder holding the scenario files FILES names for its document, written
from the docs' own TOML examples. A python block runs in the folder of the block before it in the same
document (it reads what that block wrote), else in a fresh one. Where a document shows the start of a
file a command wrote (FILE_EXAMPLES), the file must start so.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ["README.md", *sorted(f"docs/{p.name}" for p in (ROOT / "docs").glob("*.md"))]
EWASTE = [sys.executable, "-m", "ewaste.cli"]  # this checkout's `ewaste`
EWASTE_NAMES = ("ewaste", ".venv/bin/ewaste")
SHELL = ("bash", "sh", "shell", "console")
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>[\w-]*)[ \t]*\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.M | re.S)

# Documented commands not run here, by regular expression on the command, each with its reason.
SKIP = [
    (r"\bpip install\b|^python3 -m venv\b", "installs packages: needs the network and minutes (.ci/run does README's)"),
    (
        r"^tools/fetch-wheels\.sh\b",
        "downloads wheels: needs the network (tests/test_device_check.py checks the script's parts that need none)",
    ),
    (
        r"\bdevice-check\.sh\b|\btest_gpu(_speed)?\.py\b|--backend cupy",
        "GPU-only: needs a CUDA device (tests/test_device_check.py checks the refusal without one)",
    ),
    (r"^dask (scheduler|worker|cuda)\b|--scheduler tcp://", "cluster-only: needs a dask scheduler and its workers"),
    (
        r" --workers \d",
        "starts a local cluster of worker processes (about 6 s of CPU each): tests/test_scale.py runs "
        "`ewaste run --workers 2`, and docs/api.md's example, run here, `ewaste.run(..., workers=2)`",
    ),
    (
        r"^python tools/wang2024_monte_carlo\.py\b",
        "a validation script: tests/test_wang2024.py runs its comparison at 20,000 draws and checks its draws",
    ),
    (
        r"--resume\b",
        "needs an interrupted run: tests/test_scale.py::test_killed_run_resumes_to_the_same_store kills one "
        "and resumes it",
    ),
]
# A file whose start a document shows in a ```text block, written by the command before it:
# document -> (file, text that marks the block). '…' in the block is a gap, a line ending in '…' is
# cut, and time stamps may differ.
FILE_EXAMPLES = {"docs/outputs.md": ("results.csv", "# title: sweep")}
STAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00")

README_TOML = ("README.md", 'name = "my-servers"')
FIRST_TOML = ("docs/scenario-format.md", 'name = "dgx-h100"')
SWEEP_TOML = ("docs/scenario-format.md", "# dimension servers_lifetime_mean = 2, 4, 6")
# The scenario files each document's commands and examples name: file -> (document, text unique to
# the TOML example it is written from).
FILES = {
    "README.md": {"my.toml": README_TOML},
    "docs/api.md": {"my.toml": README_TOML},
    "docs/outputs.md": {"my.toml": README_TOML, "sweep.toml": SWEEP_TOML},
    "docs/scaling.md": {"sweep.toml": SWEEP_TOML},
    "docs/scenario-format.md": {"my.toml": FIRST_TOML},
}


def swap(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} is not once in the example"
    return text.replace(old, new)


NAN_IN_2025 = """
import xarray as xr
grid = xr.load_dataset("grid.nc")
by_step = grid["utilisation"].broadcast_like(grid["time"]).transpose("fleet", "time")
grid["utilisation"] = by_step.where(grid["year"] != 2025)
grid.to_netcdf("grid.nc")
"""
# The error lines of docs/scenario-format.md#errors: start of the line -> (the first scenario of that
# page, my.toml, edited; the command that prints the line; commands run before it, which must succeed).
# Only the entries of lines the page quotes run.
ERRORS = {
    "ewaste: error: my.toml: fleets.servers.stok:": (
        lambda t: swap(t, "\nstock = ", "\nstok = "),
        ["validate", "my.toml"],
    ),
    "ewaste: error: my.toml: fleets.servers.mass.units:": (
        lambda t: swap(t, "mass = 130.45 ", 'mass = { value = 287.6, units = "lbs" } '),
        ["validate", "my.toml"],
    ),
    "ewaste: error: my.toml: recycling.collection_rate:": (
        lambda t: t + "\n[recycling]\ncollection_rate = 1.3\n",
        ["validate", "my.toml"],
    ),
    "ewaste: error: my.toml: fleets.servers.lifetime.mean:": (
        lambda t: (
            swap(t, "mean = 4,", 'mean = { dim = "case", values = [4, 5] },')
            + '\n[dimensions]\ncase = ["a", "b", "c"]\n'
        ),
        ["validate", "my.toml"],
    ),
    "ewaste: error: my.toml: dimensions.case:": (
        lambda t: t + '\n[dimensions]\ncase = ["a", "b"]\n',
        ["validate", "my.toml"],
    ),
    "ewaste: error: my.toml: fleets.servers.lifetime:": (  # stock-driven, nothing survives its first year
        lambda t: swap(t, '{ type = "weibull", mean = 4, std = 1.5 }', '{ type = "fixed", mean = 0.4 }'),
        ["run", "my.toml", "-q"],
    ),
    "ewaste: error: my.toml: TOML syntax error:": (
        lambda t: swap(t, "[scenario]\n", "[fleets.servers\n"),
        ["validate", "my.toml"],
    ),
    "ewaste: error: my.toml: starts with a UTF-8 byte-order mark;": (lambda t: "\ufeff" + t, ["validate", "my.toml"]),
    "ewaste: error: my.toml: fleets.servers.power: values nested": (
        lambda t: swap(t, "power = 10.2 ", "power = " + "[" * 33 + "10.2" + "]" * 33 + " "),
        ["validate", "my.toml"],
    ),
    "ewaste: error: my.toml: fleets.servers.mass.dim:": (
        lambda t: swap(t, "mass = 130.45 ", 'mass = { values = [102, 130.45], dim = "a/b" } '),
        ["validate", "my.toml"],
    ),
    "ewaste: error: grid.nc: fleets.servers.utilisation: NaN": (
        lambda t: t,
        ["validate", "grid.nc"],
        ["ewaste", "grid", "my.toml", "-o", "grid.nc"],
        ["python", "-c", NAN_IN_2025],
    ),
    "ewaste: error: missing.toml:": (lambda t: t, ["validate", "missing.toml"]),
    "ewaste: error: results.nc:": (lambda t: t, ["run", "my.toml", "-o", "results.nc"]),  # results.nc exists
}


def fenced(doc: str) -> list[tuple[str, str, int]]:
    """(language, body, line) of each fenced block of a document, bodies dedented as written."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    out = []
    for m in FENCE.finditer(text):
        indent = len(m["indent"])
        body = "".join(line[indent:] for line in m["body"].splitlines(keepends=True))
        out.append((m["lang"], body, text.count("\n", 0, m.start()) + 1))
    return out


def toml_example(doc: str, marker: str) -> str:
    found = [body for lang, body, _ in fenced(doc) if lang == "toml" and marker in body]
    assert len(found) == 1, f"{doc}: {len(found)} TOML examples contain {marker!r}"
    return found[0]


def shell_commands(body: str) -> list[list[str]]:
    """The commands of a bash block, as argument lists, comments and `$ ` prompts removed."""
    out = []
    for line in body.splitlines():
        line = line.strip().removeprefix("$ ")
        argv = shlex.split(line, comments=True)
        if argv:
            out.append(argv)
    return out


def skip_reason(argv: list[str]) -> str | None:
    text = shlex.join(argv)
    return next((reason for pattern, reason in SKIP if re.search(pattern, text)), None)


def documented_commands() -> list[tuple[str, int, list[str]]]:
    return [
        (doc, line, argv)
        for doc in DOCS
        for lang, body, line in fenced(doc)
        if lang in SHELL
        for argv in shell_commands(body)
    ]


def fresh_folder(tmp: Path, doc: str, n: int) -> Path:
    folder = tmp / f"block{n}"
    folder.mkdir()
    for name, (source, marker) in FILES.get(doc, {}).items():
        (folder / name).write_text(toml_example(source, marker), encoding="utf-8")
    return folder


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


def run_document(doc: str, tmp: Path) -> tuple[str | None, int]:
    """Run a document's commands and python examples in order: (the first failure or None, how many ran)."""
    folder, ran = None, 0
    for n, (lang, body, line) in enumerate(fenced(doc)):
        if lang in SHELL:
            folder = fresh_folder(tmp, doc, n)
            for argv in shell_commands(body):
                if skip_reason(argv):
                    continue
                if argv[0] not in EWASTE_NAMES:
                    return f"{doc}:{line}: no rule runs `{shlex.join(argv)}` (add it to SKIP, with a reason)", ran
                done = run(EWASTE + argv[1:], folder)
                if done.returncode != 0:
                    return f"{doc}:{line}: `{shlex.join(argv)}` exited {done.returncode}:\n{done.stderr}", ran
                ran += 1
        elif lang == "python":
            folder = folder or fresh_folder(tmp, doc, n)
            done = run([sys.executable, "-c", body], folder)  # as typed at a prompt: `-c`, not a script file
            if done.returncode != 0:
                return f"{doc}:{line}: the python example exited {done.returncode}:\n{done.stderr}", ran
            ran += 1
    if doc in FILE_EXAMPLES:
        name, marker = FILE_EXAMPLES[doc]
        [shown] = [body for lang, body, _ in fenced(doc) if lang == "text" and marker in body]
        missing = unshown_line(shown, (folder / name).read_text(encoding="utf-8"))
        if missing is not None:
            return f"{doc}: the start of {name} shown is not what ewaste wrote: no line matches {missing!r}", ran
    return None, ran


def unshown_line(shown: str, written: str) -> str | None:
    """The first line shown that is not in the file, in order; None if all are."""
    lines = iter(written.splitlines())
    for want in shown.splitlines():
        if want == "…":
            continue
        parts = [re.escape(part) for part in STAMP.split(want.removesuffix("…"))]
        pattern = re.compile(STAMP.pattern.join(parts) + (".*" if want.endswith("…") else ""))
        if not any(pattern.fullmatch(got) for got in lines):
            return want
    return None


def quoted_errors() -> list[str]:
    """The error lines docs/scenario-format.md#errors quotes."""
    doc = "docs/scenario-format.md"
    return next(
        body for lang, body, _ in fenced(doc) if lang == "text" and "unknown key; did you mean" in body
    ).splitlines()


def run_errors(tmp: Path) -> list[tuple[str, str, int, str]]:
    """(start of the quoted line, command, exit code, stderr) for each error quoted that ERRORS has."""
    scenario = toml_example(*FIRST_TOML)
    quoted = quoted_errors()
    out = []
    for n, (start, (edit, args, *setup)) in enumerate(ERRORS.items()):
        if not any(q.startswith(start) for q in quoted):
            continue
        folder = tmp / f"case{n}"
        folder.mkdir()
        (folder / "my.toml").write_text(edit(scenario), encoding="utf-8")
        (folder / "results.nc").write_bytes(b"")
        for argv in setup:
            done = run((EWASTE if argv[0] == "ewaste" else [sys.executable]) + argv[1:], folder)
            assert done.returncode == 0, f"{shlex.join(argv)}, before `ewaste {shlex.join(args)}`: {done.stderr}"
        done = run(EWASTE + args, folder)
        out.append((start, "ewaste " + shlex.join(args), done.returncode, done.stderr.strip()))
    return out


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory):
    """The documents and the quoted errors the selected tests need, run side by side (one core each;
    each document in order)."""
    mine = [item for item in request.session.items if getattr(item, "module", None) is request.module]
    docs = {
        item.callspec.params["doc"] for item in mine if "doc" in getattr(getattr(item, "callspec", None), "params", {})
    }
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 2
    with ThreadPoolExecutor(max_workers=max(2, cores)) as pool:
        jobs = {}
        if any(item.originalname == "test_quoted_errors_are_what_ewaste_prints" for item in mine):
            jobs["errors"] = pool.submit(run_errors, tmp_path_factory.mktemp("errors"))
        for doc in sorted(docs, key=lambda d: -len(fenced(d))):  # the longest first
            jobs[doc] = pool.submit(run_document, doc, tmp_path_factory.mktemp(Path(doc).stem))
        yield jobs


def test_skip_entries_match_documented_commands():
    texts = [shlex.join(argv) for _, _, argv in documented_commands()]
    for pattern, _ in SKIP:
        assert any(re.search(pattern, t) for t in texts), f"SKIP entry {pattern!r} matches no documented command"


def test_every_documented_command_is_run_or_skipped():
    for doc, line, argv in documented_commands():
        assert argv[0] in EWASTE_NAMES or skip_reason(argv), (
            f"{doc}:{line}: no rule runs {shlex.join(argv)!r}: make it an `ewaste` command or add it to SKIP"
        )


@pytest.mark.parametrize("doc", DOCS)
def test_commands_and_python_examples_run(doc: str, outcomes):
    failure, ran = outcomes[doc].result()
    assert failure is None, failure
    if not ran:
        pytest.skip(f"{doc}: no command or python example to run here (none shown, or all in SKIP)")


def test_quoted_errors_are_what_ewaste_prints(outcomes):
    quoted = quoted_errors()
    unmatched = [q for q in quoted if not any(q.startswith(start) for start in ERRORS)]
    assert not unmatched, f"docs/scenario-format.md: no input in ERRORS for {unmatched}"
    results = outcomes["errors"].result()
    assert len(results) == len(quoted)
    for start, command, code, stderr in results:
        [want] = [q for q in quoted if q.startswith(start)]
        assert (code, stderr) == (2, want), f"`{command}` for the line {want!r}"


def test_toml_examples_with_a_fleet_are_valid_scenarios(tmp_path: Path):
    import ewaste  # noqa: PLC0415

    checked = 0
    for doc in DOCS:
        for lang, body, line in fenced(doc):
            if lang != "toml" or "[fleets." not in body:
                continue
            path = tmp_path / f"{Path(doc).stem}-{line}.toml"
            path.write_text(body, encoding="utf-8")
            ewaste.load_grid(str(path))  # raises InputError, naming the field, if the example is wrong
            checked += 1
    assert checked >= 10
