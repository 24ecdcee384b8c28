"""EMA of the trainable weights: Flow-GRPO's decay schedule and interval, bit-exact swap in and out."""

import torch

from rl3dedit.rl import EMA, swapped_in


def test_ema_follows_flow_grpo_schedule():
    param = torch.nn.Parameter(torch.zeros(3))
    ema = EMA(decay=0.9, interval=2)
    state = ema.init([param])
    with torch.no_grad():
        param.fill_(1.0)
    assert not ema.update(state, [param], step=0)  # (0 + 1) % 2 != 0
    assert ema.update(state, [param], step=1)
    # first update: decay = min(1/10, 0.9) = 0.1 -> 0.1·0 + 0.9·1
    torch.testing.assert_close(state.shadow[0], torch.full((3,), 0.9))
    assert ema.update(state, [param], step=3)
    decay = min(2 / 11, 0.9)
    torch.testing.assert_close(state.shadow[0], torch.full((3,), 0.9 * decay + (1 - decay)))
    assert state.num_updates == 2


def test_swapped_in_restores_raw_weights_bitwise():
    param = torch.nn.Parameter(torch.randn(5))
    raw = param.detach().clone()
    ema = EMA()
    state = ema.init([param])
    state.shadow[0].add_(1.0)
    with swapped_in(state, [param]):
        torch.testing.assert_close(param.detach(), raw + 1.0)
    assert torch.equal(param.detach(), raw)
