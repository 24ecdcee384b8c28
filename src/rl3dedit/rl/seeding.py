"""Deterministic seeds derived from named parts: a sample can be regenerated from (run seed, update, sample, member).

Seed per sample, deterministically (docs/references.md §7): nanochat seeds each sampling call from (step, example, sub-batch);
we hash the parts so seeds of neighbouring updates or members are unrelated, and store them in the `Rollout`.
"""

from __future__ import annotations

import hashlib


def derive_seed(*parts: int | str) -> int:
    """A 31-bit seed from the ordered parts (SHA-256 of their text), stable across runs, platforms and processes."""
    text = "/".join(str(p) for p in parts)
    return int.from_bytes(hashlib.sha256(text.encode("utf-8")).digest()[:4], "big") & 0x7FFFFFFF
