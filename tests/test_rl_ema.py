"""EMA of the trainable weights: Flow-GRPO's decay schedule and interval, bit-exact swap in and out."""

import pytest
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


class _OnAccelerator(torch.Tensor):
    """A CPU tensor posing as one on a GPU: mixing it with host tensors in one op fails, as CUDA + CPU does;
    `.to("cpu")` and `copy_` (which move data between devices) work."""

    @property
    def device(self) -> torch.device:
        return torch.device("cuda", 0)

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        flat = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
        if func is torch.Tensor.to and any(torch.device(a).type == "cpu" for a in (*args[1:], kwargs.get("device"))
                                           if isinstance(a, (str, torch.device))):
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs).as_subclass(torch.Tensor)
        if func is not torch.Tensor.copy_ and any(type(a) is torch.Tensor for a in flat) and any(
                isinstance(a, cls) for a in flat):
            raise RuntimeError("Expected all tensors to be on the same device, but found cuda:0 and cpu")
        return super().__torch_function__(func, types, args, kwargs)


def test_ema_survives_parameters_moving_to_another_device():
    # Model offload: the LoRA weights are on the host when the EMA starts and on the GPU after each update.
    param = torch.nn.Parameter(torch.zeros(3))
    ema = EMA(decay=0.9, interval=1)
    state = ema.init([param])
    assert state.device == torch.device("cpu")
    moved = torch.ones(3).as_subclass(_OnAccelerator)
    assert moved.device.type == "cuda"
    with pytest.raises(RuntimeError, match="same device"):
        torch.zeros(3).add_(moved)  # the mock does fail on a device mix
    assert ema.update(state, [moved], step=0)
    torch.testing.assert_close(state.shadow[0], torch.full((3,), 0.9))
    assert type(state.shadow[0]) is torch.Tensor, "the shadow stays on its stated device"
    with swapped_in(state, [moved]):
        torch.testing.assert_close(moved.as_subclass(torch.Tensor), torch.full((3,), 0.9))
    torch.testing.assert_close(moved.as_subclass(torch.Tensor), torch.ones(3))
