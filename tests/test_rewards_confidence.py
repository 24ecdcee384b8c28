"""Confidence transforms for r_D and r_P."""

from __future__ import annotations

import pytest
import torch

from rl3dedit.rewards.confidence import CONFIDENCE_TRANSFORMS, transform_confidence


def test_transforms_values_and_order():
    conf = torch.tensor([1.0, 2.0, 5.0, 40.0, 260.0])
    torch.testing.assert_close(transform_confidence(conf, "raw"), conf)
    inverse = transform_confidence(conf, "inverse")
    torch.testing.assert_close(inverse, torch.tensor([0.0, 0.5, 0.8, 0.975, 1 - 1 / 260]))
    # 1 - 1/c is the sigmoid of VGGT's pre-activation logit log(c - 1).
    torch.testing.assert_close(inverse[1:], torch.sigmoid(torch.log(conf[1:] - 1)))
    torch.testing.assert_close(transform_confidence(conf, "log"), conf.log())
    for name in CONFIDENCE_TRANSFORMS:
        out = transform_confidence(conf, name)
        assert (out[1:] > out[:-1]).all(), name  # every transform keeps the order of confidences


def test_unknown_transform_lists_valid_names():
    with pytest.raises(ValueError, match="raw, inverse, log"):
        transform_confidence(torch.ones(2), "softplus")
