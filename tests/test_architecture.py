"""The package map of docs/ARCHITECTURE.md holds: no import cycle between packages, small public APIs."""

from __future__ import annotations

import ast
import importlib
from collections import defaultdict
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "rl3dedit"
PACKAGES = sorted(p.name for p in SRC.iterdir() if (p / "__init__.py").is_file())


def _unit(module: str) -> str | None:
    """The map's unit of an rl3dedit module: its top-level package or module; per-package `config` modules are
    the settings leaves that `rl3dedit.config` composes."""
    parts = module.split(".")
    if len(parts) < 2:
        return None
    if len(parts) > 2 and parts[-1] == "config":
        return "config"
    return parts[1]


def _imports() -> dict[str, set[str]]:
    """Package-level import edges, skipping `if TYPE_CHECKING:` blocks (annotations only)."""
    edges: dict[str, set[str]] = defaultdict(set)
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        source = _unit(".".join(parts)) if len(parts) > 1 else None
        tree = ast.parse(path.read_text())
        typing_only = {id(n) for block in ast.walk(tree) if isinstance(block, ast.If)
                       and "TYPE_CHECKING" in ast.unparse(block.test) for n in ast.walk(block)}
        for node in ast.walk(tree):
            if id(node) in typing_only or not isinstance(node, ast.ImportFrom) or node.level:
                continue
            if node.module and node.module.startswith("rl3dedit."):
                target = _unit(node.module)
                if source and target and target != source:
                    edges[source].add(target)
    return edges


def test_no_import_cycle_between_packages():
    edges = _imports()
    assert edges["synthetic"] >= {"render", "views"} and not edges["scene"] & {"render", "views", "synthetic"}

    def reachable(start: str) -> set[str]:
        seen, stack = set(), [start]
        while stack:
            for nxt in edges.get(stack.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return seen

    cycles = sorted(unit for unit in edges if unit in reachable(unit))
    assert not cycles, f"import cycles through {cycles}: {dict(edges)}"


@pytest.mark.parametrize("package", PACKAGES)
def test_public_api_fits_on_a_screen(package):
    module = importlib.import_module(f"rl3dedit.{package}")
    names = getattr(module, "__all__", [])
    assert len(names) <= 20, f"rl3dedit.{package}.__all__ has {len(names)} names"
    for name in names:
        getattr(module, name)
