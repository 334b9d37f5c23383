"""What ships with ewaste: the bundled scenarios, hardware archetypes and recycling yields, with sources."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from pathlib import Path

from ..errors import InputError

DEFAULT = "default"


def bundled() -> dict[str, Path]:
    """Bundled scenario names and their files."""
    root = resources.files("ewaste.scenarios")
    return {Path(str(p)).stem: Path(str(p)) for p in root.iterdir() if str(p).endswith(".toml")}


def resolve(name_or_path: str | None) -> Path:
    """A scenario given as a bundled name or a file path."""
    if name_or_path is None:
        name_or_path = DEFAULT
    path = Path(name_or_path)
    if path.suffix in (".toml", ".nc") or path.exists():
        return path
    files = bundled()
    if name_or_path not in files:
        raise InputError(name_or_path, None, f"no such file or bundled scenario; bundled: {', '.join(sorted(files))}")
    return files[name_or_path]


def describe(path: Path) -> tuple[str, str]:
    """One-line description and source of a bundled scenario."""
    meta = tomllib.loads(path.read_text(encoding="utf-8")).get("scenario", {})
    sources = meta.get("sources", [])
    return str(meta.get("description", "")).split("\n")[0], "; ".join(sources) if sources else ""


def _package_toml(name: str) -> dict:
    return tomllib.loads(resources.files("ewaste.data").joinpath(name).read_text())


@cache
def archetypes() -> dict:
    """AI hardware archetypes (package data `archetypes.toml`): mass, power, GPUs, with sources."""
    return _package_toml("archetypes.toml")


@cache
def recycling_yields() -> dict[str, dict[str, dict]]:
    """Default pre- and end-processing yields by material or metal, with sources."""
    return _package_toml("recycling.toml")
