"""ARCHITECTURE.md stays true: every code reference in backticks resolves.

A dotted name under one of the project's packages (`generations.kinds.KindSpec`) must
import and resolve attribute by attribute; a path (`generations/admin/`,
`templates/history/detail.html`) must exist in the checkout.
"""

import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENT = ROOT / "ARCHITECTURE.md"
PACKAGES = ("config", "generations", "history", "storage", "tests")
TOP_LEVEL = (*PACKAGES, "templates", "static", "docs", ".ci")

_BACKTICKED = re.compile(r"`([^`\n]+)`")
_DOTTED = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)+$")


def _references() -> tuple[list[str], list[str]]:
    names, paths = [], []
    for token in _BACKTICKED.findall(DOCUMENT.read_text(encoding="utf-8")):
        if any(mark in token for mark in "<{*"):
            continue  # a pattern (a storage key layout), not a path
        if "/" in token and token.split("/", 1)[0] in TOP_LEVEL:
            paths.append(token.split()[0].rstrip(","))
        elif _DOTTED.match(token) and token.split(".", 1)[0] in PACKAGES:
            names.append(token)
    return sorted(set(names)), sorted(set(paths))


NAMES, PATHS = _references()


def _resolve(dotted: str) -> object:
    """The module or attribute a dotted name denotes; raises LookupError if none."""
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            found: object = importlib.import_module(module_name)
        except ModuleNotFoundError as missing:
            if missing.name is not None and not module_name.startswith(missing.name):
                raise
            continue
        for attribute in parts[split:]:
            if not hasattr(found, attribute):
                raise LookupError(f"{module_name} has no {'.'.join(parts[split:])}")
            found = getattr(found, attribute)
        return found
    raise LookupError(f"no module for {dotted}")


def test_the_document_names_code_at_all():
    assert len(NAMES) > 40
    assert len(PATHS) > 20


@pytest.mark.parametrize("dotted", NAMES)
def test_each_named_module_or_object_exists(dotted):
    assert _resolve(dotted) is not None


@pytest.mark.parametrize("path", PATHS)
def test_each_named_path_exists(path):
    assert (ROOT / path).exists(), f"ARCHITECTURE.md names {path}, which does not exist"
