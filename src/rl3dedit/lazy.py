"""Lazy package exports (PEP 562): a package lists `name -> module` and each name is imported on first use.

The editor, rl and eval packages pull in diffusers, transformers, peft and accelerate; importing them lazily keeps
`import rl3dedit.config` (which reads every package's `config` module) and the CLI's start-up fast.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """The `__getattr__` and `__dir__` for `package`, resolving `exports[name]` modules on first access."""
    namespace = importlib.import_module(package).__dict__

    def __getattr__(name: str) -> object:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(exports[name]), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
