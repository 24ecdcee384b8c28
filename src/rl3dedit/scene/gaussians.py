"""The 3D Gaussian Splatting scene: raw (pre-activation) parameters with activations as properties.

Conventions (see docs/ARCHITECTURE.md):
- quaternions are **wxyz** (scalar first), not necessarily normalised;
- scales are stored as natural-log scales, opacities as logits (INRIA ``.ply`` convention);
- colour is real spherical harmonics with the INRIA constants: rgb = 0.5 + C0 * sh_dc for degree 0.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import torch

SH_C0 = 0.28209479177387814


def sh_degree_from_rest(num_rest_coeffs: int) -> int:
    """Degree d such that (d + 1)^2 - 1 == num_rest_coeffs; raises ValueError otherwise."""
    for degree in range(4):
        if (degree + 1) ** 2 - 1 == num_rest_coeffs:
            return degree
    raise ValueError(
        f"{num_rest_coeffs} higher-order SH coefficients per channel is not a valid degree 0..3 (expected 0, 3, 8 or 15)"
    )


def rgb_to_sh_dc(rgb: torch.Tensor) -> torch.Tensor:
    """Inverse of the INRIA DC colour mapping: rgb in [0, 1] -> DC coefficient."""
    return (rgb - 0.5) / SH_C0


@dataclass
class GaussianScene:
    """A 3DGS scene holding raw optimisable parameters.

    Fields (N Gaussians, K = (degree + 1)^2 - 1 higher-order SH coefficients):
        means: (N, 3) world-space centres.
        quats: (N, 4) rotations, wxyz, unnormalised.
        log_scales: (N, 3) natural-log axis scales.
        opacity_logits: (N,) pre-sigmoid opacities.
        sh_dc: (N, 3) degree-0 SH coefficient per RGB channel.
        sh_rest: (N, K, 3) higher-order SH, coefficient-major (gsplat's layout), K in {0, 3, 8, 15}.
    """

    means: torch.Tensor
    quats: torch.Tensor
    log_scales: torch.Tensor
    opacity_logits: torch.Tensor
    sh_dc: torch.Tensor
    sh_rest: torch.Tensor

    def __post_init__(self) -> None:
        self.validate()

    @classmethod
    def unchecked(cls, **params: torch.Tensor) -> GaussianScene:
        """A scene over tensors already known to be valid, without `validate`: its finiteness checks cost a host
        sync per field on a GPU, too much in an optimisation step. Validate at boundaries (load, fit result)."""
        names = {f.name for f in fields(cls)}
        if set(params) != names:
            raise TypeError(f"GaussianScene.unchecked needs exactly {sorted(names)}, got {sorted(params)}")
        scene = cls.__new__(cls)
        scene.__dict__.update(params)
        return scene

    def validate(self, source: str = "GaussianScene") -> None:
        """Check shapes, counts and finiteness; `source` (e.g. a file path) prefixes every message."""
        n = self.means.shape[0] if self.means.ndim == 2 else -1
        expected = {
            "means": (n, 3),
            "quats": (n, 4),
            "log_scales": (n, 3),
            "opacity_logits": (n,),
            "sh_dc": (n, 3),
        }
        for name, shape in expected.items():
            value = getattr(self, name)
            if tuple(value.shape) != shape:
                raise ValueError(f"{source}: {name} has shape {tuple(value.shape)}, expected {shape}")
        if self.sh_rest.ndim != 3 or self.sh_rest.shape[0] != n or self.sh_rest.shape[2] != 3:
            raise ValueError(f"{source}: sh_rest has shape {tuple(self.sh_rest.shape)}, expected ({n}, K, 3)")
        sh_degree_from_rest(self.sh_rest.shape[1])
        for f in fields(self):
            value = getattr(self, f.name)
            if not torch.isfinite(value).all():
                bad = int((~torch.isfinite(value)).sum())
                raise ValueError(f"{source}: {f.name} has {bad} non-finite values (NaN or inf)")
        if n > 0 and (self.quats.norm(dim=-1) == 0).any():
            raise ValueError(f"{source}: some quaternions are all zero")

    @property
    def num_gaussians(self) -> int:
        return self.means.shape[0]

    @property
    def sh_degree(self) -> int:
        return sh_degree_from_rest(self.sh_rest.shape[1])

    @property
    def scales(self) -> torch.Tensor:
        """(N, 3) activated scales, exp(log_scales)."""
        return self.log_scales.exp()

    @property
    def opacities(self) -> torch.Tensor:
        """(N,) activated opacities in (0, 1)."""
        return torch.sigmoid(self.opacity_logits)

    @property
    def rotations(self) -> torch.Tensor:
        """(N, 4) unit quaternions, wxyz."""
        return torch.nn.functional.normalize(self.quats, dim=-1)

    @property
    def sh_coeffs(self) -> torch.Tensor:
        """(N, (degree + 1)^2, 3) all SH coefficients, DC first (gsplat's `colors` with `sh_degree` set)."""
        return torch.cat([self.sh_dc[:, None, :], self.sh_rest], dim=1)

    @property
    def device(self) -> torch.device:
        return self.means.device

    def parameters(self) -> dict[str, torch.Tensor]:
        """Name -> tensor for every raw parameter, in field order."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "GaussianScene":
        return GaussianScene(**{k: v.to(device=device, dtype=dtype) for k, v in self.parameters().items()})

    def detach(self) -> "GaussianScene":
        return GaussianScene(**{k: v.detach().clone() for k, v in self.parameters().items()})

    def subset(self, mask_or_index: torch.Tensor) -> "GaussianScene":
        """A new scene with the selected Gaussians (boolean mask or index tensor over N)."""
        return GaussianScene(**{k: v[mask_or_index] for k, v in self.parameters().items()})

    def with_params(self, **params: torch.Tensor) -> "GaussianScene":
        return replace(self, **params)
