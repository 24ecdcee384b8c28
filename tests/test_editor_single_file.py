"""The released weights' BFL single-file layout through our loader, at FLUX's real width (slow: ~2 GiB of weights).

diffusers' BFL converter hard-codes FLUX's 3072 width, so no tiny BFL file exists: this builds a diffusers-layout
transformer at width 3072 with 1 double + 1 single block (530 M parameters), writes it in the BFL layout by
inverting diffusers' key mapping (below, from the layout of black-forest-labs/flux's `model.py`), and loads it back
offline with `load_transformer_file`. The fast test of the arguments our loader passes is in
test_editor_components.py.
"""

from __future__ import annotations

import pytest
import torch

pytestmark = pytest.mark.slow

WIDTH, MLP = 3072, 4 * 3072


def _to_bfl(state: dict[str, torch.Tensor], num_double: int, num_single: int) -> dict[str, torch.Tensor]:
    """diffusers FluxTransformer2DModel keys -> BFL keys (fused qkv, single-block linear1, shift/scale order)."""
    out: dict[str, torch.Tensor] = {}
    renames = {
        "time_text_embed.timestep_embedder.linear_1": "time_in.in_layer",
        "time_text_embed.timestep_embedder.linear_2": "time_in.out_layer",
        "time_text_embed.text_embedder.linear_1": "vector_in.in_layer",
        "time_text_embed.text_embedder.linear_2": "vector_in.out_layer",
        "time_text_embed.guidance_embedder.linear_1": "guidance_in.in_layer",
        "time_text_embed.guidance_embedder.linear_2": "guidance_in.out_layer",
        "context_embedder": "txt_in",
        "x_embedder": "img_in",
        "proj_out": "final_layer.linear",
    }
    for ours, theirs in renames.items():
        for kind in ("weight", "bias"):
            out[f"{theirs}.{kind}"] = state[f"{ours}.{kind}"]
    for kind in ("weight", "bias"):  # BFL's final modulation is (shift, scale); diffusers' is (scale, shift)
        scale, shift = state[f"norm_out.linear.{kind}"].chunk(2, dim=0)
        out[f"final_layer.adaLN_modulation.1.{kind}"] = torch.cat([shift, scale])
    for i in range(num_double):
        d, b = f"transformer_blocks.{i}.", f"double_blocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{b}img_mod.lin.{kind}"] = state[f"{d}norm1.linear.{kind}"]
            out[f"{b}txt_mod.lin.{kind}"] = state[f"{d}norm1_context.linear.{kind}"]
            out[f"{b}img_attn.qkv.{kind}"] = torch.cat([state[f"{d}attn.to_{x}.{kind}"] for x in "qkv"])
            out[f"{b}txt_attn.qkv.{kind}"] = torch.cat([state[f"{d}attn.add_{x}_proj.{kind}"] for x in "qkv"])
            out[f"{b}img_mlp.0.{kind}"] = state[f"{d}ff.net.0.proj.{kind}"]
            out[f"{b}img_mlp.2.{kind}"] = state[f"{d}ff.net.2.{kind}"]
            out[f"{b}txt_mlp.0.{kind}"] = state[f"{d}ff_context.net.0.proj.{kind}"]
            out[f"{b}txt_mlp.2.{kind}"] = state[f"{d}ff_context.net.2.{kind}"]
            out[f"{b}img_attn.proj.{kind}"] = state[f"{d}attn.to_out.0.{kind}"]
            out[f"{b}txt_attn.proj.{kind}"] = state[f"{d}attn.to_add_out.{kind}"]
        out[f"{b}img_attn.norm.query_norm.scale"] = state[f"{d}attn.norm_q.weight"]
        out[f"{b}img_attn.norm.key_norm.scale"] = state[f"{d}attn.norm_k.weight"]
        out[f"{b}txt_attn.norm.query_norm.scale"] = state[f"{d}attn.norm_added_q.weight"]
        out[f"{b}txt_attn.norm.key_norm.scale"] = state[f"{d}attn.norm_added_k.weight"]
    for i in range(num_single):
        d, b = f"single_transformer_blocks.{i}.", f"single_blocks.{i}."
        for kind in ("weight", "bias"):
            out[f"{b}modulation.lin.{kind}"] = state[f"{d}norm.linear.{kind}"]
            out[f"{b}linear1.{kind}"] = torch.cat([state[f"{d}attn.to_{x}.{kind}"] for x in "qkv"]
                                                  + [state[f"{d}proj_mlp.{kind}"]])
            out[f"{b}linear2.{kind}"] = state[f"{d}proj_out.{kind}"]
        out[f"{b}norm.query_norm.scale"] = state[f"{d}attn.norm_q.weight"]
        out[f"{b}norm.key_norm.scale"] = state[f"{d}attn.norm_k.weight"]
    return out


def test_bfl_file_at_flux_width_loads_to_the_same_model(tmp_path) -> None:
    from diffusers import FluxTransformer2DModel
    from safetensors.torch import save_file

    from rl3dedit.editor.components import _file_layout, load_transformer_file

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = FluxTransformer2DModel(
            patch_size=1, in_channels=64, num_layers=1, num_single_layers=1, attention_head_dim=128,
            num_attention_heads=24, joint_attention_dim=4096, pooled_projection_dim=768, guidance_embeds=True,
            axes_dims_rope=(16, 56, 56),
        ).eval()
    assert model.inner_dim == WIDTH
    base = tmp_path / "kontext"
    model.save_config(base / "transformer")  # the base model's transformer config, as a FLUX folder has it
    state = model.state_dict()
    bfl = _to_bfl(state, num_double=1, num_single=1)
    assert sum(t.numel() for t in bfl.values()) == sum(t.numel() for t in state.values())
    path = tmp_path / "rl3dedit-flux-kontext.safetensors"
    save_file({k: v.contiguous() for k, v in bfl.items()}, str(path))
    del bfl
    assert _file_layout(str(path)) == "bfl"

    loaded = load_transformer_file(str(path), torch.float32, str(base)).eval()
    got = loaded.state_dict()
    assert got.keys() == state.keys()
    assert all(torch.equal(got[k], state[k]) for k in state), "weights differ after the BFL round trip"
    gen = torch.Generator().manual_seed(1)
    inputs = dict(
        hidden_states=torch.randn(1, 16, 64, generator=gen),
        encoder_hidden_states=torch.randn(1, 8, 4096, generator=gen), pooled_projections=torch.randn(1, 768, generator=gen), timestep=torch.tensor([0.5]),
        guidance=torch.tensor([2.5]), img_ids=torch.zeros(16, 3), txt_ids=torch.zeros(8, 3),
    )
    with torch.no_grad():
        assert torch.equal(loaded(**inputs).sample, model(**inputs).sample)
