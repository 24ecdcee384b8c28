"""Two-layer perceptron with exact (erf) GELU, as in DINOv2 and VGGT (`fc1`, `fc2` keys)."""

from __future__ import annotations

from torch import Tensor, nn

__all__ = ["Mlp"]


class Mlp(nn.Module):
    """x (..., in) -> fc1 -> GELU (exact) -> fc2 -> (..., out)."""

    def __init__(self, in_features: int, hidden_features: int, out_features: int | None = None, bias: bool = True):
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, out_features or in_features, bias=bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))
