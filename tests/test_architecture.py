"""The house rules (docs/architecture.md): one-way imports, small modules that say their job."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ewaste"
MAX_LINES = 400
LINT = Path(sys.executable).with_name("lint-imports")


def lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {"PATH": str(LINT.parent), "PYTHONPATH": str(cwd)}
    return subprocess.run(
        [str(LINT), "--no-logo", "--no-cache"], cwd=cwd, capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def copy_of_the_package(tmp_path_factory) -> Path:
    """The package and its contracts in a folder of their own, to break the rules in."""
    root = tmp_path_factory.mktemp("house")
    shutil.copytree(PACKAGE, root / "ewaste", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", root)
    return root


def test_the_imports_keep_every_contract():
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "BROKEN" not in out.stdout


@pytest.mark.parametrize(
    ("module", "bad_import", "contract"),
    [
        ("inputs/scenario.py", "from ..model import evaluate", "Layers"),  # inputs do not import the model
        ("engine/stockflow.py", "from ..inputs import variables", "Layers"),  # the engine imports nothing above it
        ("engine/lifetime.py", "import xarray", "The engine knows nothing"),
        ("outputs/summary.py", "from ..engine import stockflow", "Outputs do not import the engine"),
        ("model/impacts.py", "import cupy", "Only ewaste.engine.backend imports CuPy"),
        ("engine/lifetime.py", "from . import kernel", "No import cycles"),
    ],
)
def test_a_forbidden_import_fails_the_check(copy_of_the_package, module, bad_import, contract):
    path = copy_of_the_package / "ewaste" / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n{bad_import}  # noqa\n")
        out = lint(copy_of_the_package)
    finally:
        path.write_text(original)
    assert out.returncode != 0
    broken = [line for line in out.stdout.splitlines() if " BROKEN" in line]
    assert any(line.startswith(contract) for line in broken), out.stdout


def modules() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_each_module_is_small_and_says_its_job(path: Path):
    text = path.read_text()
    assert len(text.splitlines()) <= MAX_LINES
    doc = ast.get_docstring(ast.parse(text))
    assert doc, "a module opens with a docstring that says its job"
    assert doc.splitlines()[0].strip(), "the docstring's first line says the job"


def test_the_command_offers_the_engines_backends():
    from ewaste.cli.commands import BACKENDS, PRECISIONS
    from ewaste.engine import backend

    assert (BACKENDS, PRECISIONS) == (backend.BACKENDS, backend.PRECISIONS)
