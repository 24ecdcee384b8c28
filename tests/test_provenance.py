"""rl3dedit.provenance: the versions and revision every run folder records."""

from __future__ import annotations

import importlib.metadata
import subprocess

from rl3dedit import provenance as prov


def test_versions_match_the_installed_distributions_and_missing_ones_are_none(monkeypatch):
    monkeypatch.setattr(prov, "TRACKED_PACKAGES", ("torch", "surely-not-installed-package"))
    versions = prov.library_versions()
    assert versions == {"torch": importlib.metadata.version("torch"), "surely-not-installed-package": None}


def test_git_revision_is_none_without_git_and_names_a_dirty_tree(monkeypatch):
    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    prov.git_revision.cache_clear()
    monkeypatch.setattr(subprocess, "run", no_git)
    assert prov.git_revision() is None

    answers = iter(["abc123\n", " M src/x.py\n"])

    def fake_git(*args, **kwargs):
        return subprocess.CompletedProcess(args, 0, stdout=next(answers), stderr="")

    prov.git_revision.cache_clear()
    monkeypatch.setattr(subprocess, "run", fake_git)
    assert prov.git_revision() == "abc123-dirty"
    prov.git_revision.cache_clear()
