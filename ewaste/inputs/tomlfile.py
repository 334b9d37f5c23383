"""Reading a scenario file: TOML text to nested tables, with every way a file can be unreadable named."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from ..errors import InputError

MAX_NESTING = 32
"""Levels of tables and lists a scenario file may nest (a nested sweep takes two per level)."""
BOM = "\ufeff"
QUOTES = ('"""', "'''", '"', "'")
_SPECIAL = re.compile(r"[\"'#\n\[\]{}=]")


def read_toml(path: str | Path) -> dict:
    """Read a TOML file into nested dicts.

    Raises InputError naming the file for a missing or unreadable file, a UTF-8 byte-order mark,
    a TOML syntax error, and values nested deeper than MAX_NESTING levels (which can exhaust the
    parser's recursion).
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(path), None, "file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(str(path), None, f"cannot read file ({exc.__class__.__name__})") from None
    if text.startswith(BOM):
        raise InputError(str(path), None, "starts with a UTF-8 byte-order mark; save it without one")
    deep = _too_deep(text)
    if deep is not None:
        line, key = deep
        raise InputError(str(path), key or f"line {line}", f"values nested more than {MAX_NESTING} levels deep")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(str(path), None, f"TOML syntax error: {exc}") from None
    except RecursionError:  # not reached by the nesting found above; a safety net
        raise InputError(str(path), None, f"values nested more than {MAX_NESTING} levels deep") from None


def _too_deep(text: str) -> tuple[int, str] | None:
    """Line and key of the first value nested more than MAX_NESTING brackets deep, else None.

    A light scan of the text (strings and comments skipped) that needs no recursion, so it also
    finds nesting deep enough to exhaust the TOML parser's. The key is the table header in force
    and the key of the statement (`fleets.servers.mass`).
    """
    depth, line, i, n = 0, 1, 0, len(text)
    header, key, statement = "", "", True
    while i < n:
        j = _SPECIAL.search(text, i)
        j = n if j is None else j.start()
        if statement and depth == 0:
            key += text[i:j]
        if j >= n:
            break
        i, c = j, text[j]
        if c in "\"'":
            quote = next(q for q in QUOTES if text.startswith(q, i))
            end = _string_end(text, i + len(quote), quote)
            if statement and depth == 0:
                key += text[i:end]
            line += text.count("\n", i, end)
            i = end
            continue
        if c == "#":
            end = text.find("\n", i)
            i = n if end < 0 else end
            continue
        if c == "[" and depth == 0 and statement and not key.strip():
            end = text.find("\n", i)
            end = n if end < 0 else end
            header = text[i:end].split("#")[0].strip().strip("[]").strip()
            i = end
            continue
        if c == "\n":
            line += 1
            statement = statement or depth == 0
            key = "" if depth == 0 else key
        elif c == "=" and depth == 0:
            statement = False
        elif c in "[{":
            depth += 1
            if depth > MAX_NESTING:
                return line, ".".join(p for p in (header, _unquote(key)) if p)
        elif c in "]}":
            depth = max(depth - 1, 0)
        i += 1
    return None


def _string_end(text: str, i: int, quote: str) -> int:
    """Index just after the string that opened with `quote` and whose body starts at `i`."""
    while i < len(text):
        if quote[0] == '"' and text[i] == "\\":
            i += 2
            continue
        if text.startswith(quote, i):
            return i + len(quote)
        if len(quote) == 1 and text[i] == "\n":
            return i  # an unterminated string: the TOML parser will say so
        i += 1
    return len(text)


def _unquote(key: str) -> str:
    return ".".join(part.strip().strip("\"'") for part in key.strip().split("."))


def check_nesting(raw: Any, source: str) -> None:
    """Refuse tables or lists nested more than MAX_NESTING levels deep (a scenario read from a dict).

    Raises InputError naming `source` and the parameter (its first three path components).
    """
    stack: list[tuple[Any, list[str], int]] = [(raw, [], 0)]
    while stack:
        node, path, depth = stack.pop()
        if depth > MAX_NESTING:
            field = ".".join(path[: 3 if path and path[0] == "fleets" else 2])
            raise InputError(source, field or None, f"values nested more than {MAX_NESTING} levels deep")
        if isinstance(node, dict):
            stack.extend((v, [*path, str(k)], depth + 1) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, path, depth + 1) for v in node)
