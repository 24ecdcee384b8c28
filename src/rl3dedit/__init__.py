"""rl3dedit: text-driven, multi-view consistent 3D Gaussian Splatting editing (RL3DEdit, arXiv 2603.03143)."""

__version__ = "0.1.0"
