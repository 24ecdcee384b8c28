"""Shared test fixtures. Tests never touch the network: hub access is switched off for the whole session."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest
import torch

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The edit command keeps base fits in the user's cache folder; tests must not fill (or reuse) a real one.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="rl3dedit-test-cache-")
for _var in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "RL3DEDIT_JUDGE_MODEL", "RL3DEDIT_ENHANCE_MODEL"):
    os.environ.pop(_var, None)

# Tiny models and small renders are dominated by per-op overhead: on the 2-core CI machine one intra-op thread is
# faster than two (measured 3-20x under load); RL3DEDIT_TEST_THREADS overrides it.
torch.set_num_threads(int(os.environ.get("RL3DEDIT_TEST_THREADS", "1")))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DIR = Path(os.environ.get("RL3DEDIT_SHARED", REPO_ROOT.parent / "shared"))


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The team's fixture folder ($RL3DEDIT_SHARED, else ../shared): real captures, VGGT conformance fixtures.

    Tests that need it skip where it does not exist.
    """
    if not SHARED_DIR.is_dir():
        pytest.skip(f"{SHARED_DIR} does not exist")
    return SHARED_DIR


@pytest.fixture(autouse=True)
def _deterministic_torch():
    torch.manual_seed(0)
    yield
