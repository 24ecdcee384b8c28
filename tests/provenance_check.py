"""Shared assertion: a run folder's metadata names the libraries it ran with (issue: versions in every run)."""

from __future__ import annotations

import importlib.metadata


def assert_records_versions(block: dict) -> None:
    libraries = block["libraries"]
    for name in ("torch", "diffusers", "transformers", "peft", "accelerate"):
        assert libraries[name] == importlib.metadata.version(name), name
    assert "gsplat" in libraries  # None when not installed, but always named
    assert block["rl3dedit"] and "git_revision" in block
