"""Reading a prepared folder (`rl.prepare`), the sample order over epochs, and the K-repeat member split.

The order is a function of (seed, epoch) only, so the data position is just the number of samples consumed and a
resumed run sees exactly the samples an uninterrupted one would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from rl3dedit.files import read_json
from rl3dedit.rl.prepare import INDEX_NAME, INDEX_VERSION
from rl3dedit.rl.seeding import derive_seed
from rl3dedit.scene import Cameras, read_cameras_json


@dataclass
class PreparedSample:
    """One training condition.

    Fields:
        id: `<scene>-vNNN-pNNN`.
        prompt: the bare instruction (the trainer wraps it in the grid template).
        source_views: (V, 3, H, W) in [0, 1], grid (row-major) order.
        anchors: (V, 3, H, W) in [0, 1], view m edited alone with the instruction (anchor references).
        cameras: the V cameras of the views (w2c OpenCV, pixel Ks at H x W).
    """

    id: str
    prompt: str
    source_views: torch.Tensor
    anchors: torch.Tensor
    cameras: Cameras


class PreparedDataset:
    """The samples of a prepared folder, in the prepared order; `dataset[i]` loads (and caches) sample i."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        path = self.root / INDEX_NAME
        if not path.is_file():
            raise FileNotFoundError(f"{path} does not exist; run `rl3dedit prepare --manifest M --out {self.root}`")
        index = read_json(path, "prepared data index")
        if not isinstance(index, dict) or index.get("version") != INDEX_VERSION:
            found = index.get("version") if isinstance(index, dict) else None
            raise ValueError(f"{path}: index version {found} is not {INDEX_VERSION}; prepare the data again")
        if not index.get("complete"):
            raise ValueError(f"{path}: preparation is incomplete; rerun `rl3dedit prepare` on the same folder to "
                             "finish it")
        self.ids: list[str] = list(index["order"])
        if not self.ids:
            raise ValueError(f"{path}: the prepared folder holds no samples")
        self._index = index
        self._cache: dict[int, PreparedSample] = {}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int) -> PreparedSample:
        if i not in self._cache:
            self._cache[i] = self._load(self.ids[i])
        return self._cache[i]

    def _load(self, sample_id: str) -> PreparedSample:
        from rl3dedit.views import load_image

        entry = self._index["samples"][sample_id]
        set_dir = self.root / "view_sets" / entry["view_set"]
        sample_dir = self.root / "samples" / sample_id
        sources = sorted(set_dir.glob("source_*.png"))
        anchors = sorted(sample_dir.glob("anchor_*.png"))
        if not sources or len(sources) != len(anchors):
            raise ValueError(f"{sample_dir}: found {len(anchors)} anchors for {len(sources)} source views in {set_dir}")
        cameras = read_cameras_json(set_dir / "cameras.json")
        return PreparedSample(
            id=sample_id, prompt=entry["prompt"],
            source_views=torch.stack([load_image(p) for p in sources]).float(),
            anchors=torch.stack([load_image(p) for p in anchors]).float(), cameras=cameras,
        )


def epoch_order(num_samples: int, seed: int, epoch: int) -> list[int]:
    """The sample order of one epoch: a permutation seeded by (seed, epoch)."""
    generator = torch.Generator().manual_seed(derive_seed("epoch", seed, epoch))
    return torch.randperm(num_samples, generator=generator).tolist()


def sample_at(position: int, num_samples: int, seed: int) -> tuple[int, int]:
    """(epoch, sample index) of the position-th sample consumed by training (0-based)."""
    epoch, offset = divmod(position, num_samples)
    return epoch, epoch_order(num_samples, seed, epoch)[offset]


def member_share(group_size: int, num_processes: int, process_index: int) -> list[int]:
    """The K-repeat sampler's split of one group (Flow-GRPO's K-repeat sampler, docs/references.md §3): every process takes group_size/num_processes
    members of the same condition; members differ by their seeds, so the group is the union over processes."""
    if group_size % num_processes:
        raise ValueError(f"rl.group_size={group_size} must be divisible by the number of processes "
                         f"({num_processes}) so every process holds the same share of each group")
    share = group_size // num_processes
    return list(range(process_index * share, (process_index + 1) * share))
