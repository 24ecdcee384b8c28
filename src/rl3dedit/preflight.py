"""Checks before long work, shared by every command and by `rl3dedit doctor`.

`preflight(config, command=...)` resolves every model the command will load (without loading it), the device and
the output folder's free space (the CLI adds whether it may be written), and estimates how long the job takes on
this device. It never downloads and never waits on the hub's retries: a hub id is found in the local cache, or costs
one TCP connect (unreachable: missing at once) and one metadata request (gated, private, no such file).
`Preflight.problems` lists everything that stops the job, each with the flag (or `--set key=value`) that fixes it,
so the user fixes all of them at once. `memory_plan` estimates the peak memory of each stage of the edit job and of training from
parameter counts of the real architectures built on the meta device (no weights).
"""

from __future__ import annotations

import functools
import os
import shutil
import socket
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlparse

from rl3dedit.config import MODEL_ROLES as ROLES  # role -> (what it is, config key, the flag commands use for it)
from rl3dedit.config import RunConfig

GIB = 2**30

# Which models each command loads (roles below); commands not listed load none.
COMMAND_MODELS: dict[str, tuple[str, ...]] = {
    "edit": ("editor", "transformer_file", "lora", "verifier"),
    "demo": ("editor", "transformer_file", "lora", "verifier"),
    "prepare": ("editor", "transformer_file", "lora"),
    "train": ("editor", "transformer_file", "lora", "verifier", "lpips"),
    "eval": ("editor", "transformer_file", "lora", "verifier", "clip"),
    "score": ("verifier",),
    "doctor": ("editor", "transformer_file", "lora", "verifier", "clip", "lpips"),
}

# Rough throughput of this class of machine, used only for "how long would this take" estimates on CPU.
CPU_FLOPS = 5e10
"""Sustained fp32 matmul FLOP/s of a few CPU cores (2 AVX2 cores reach 3-8e10)."""
CPU_SECONDS_PER_PIXEL_STEP = 4.5e-6
"""Our PyTorch rasterizer, forward + backward, per rendered pixel per optimisation step at a few thousand
Gaussians (measured: a 60-step refit of nine 64x64 views in ~10 s on 2 cores). More Gaussians cost more, so
estimates from it are lower bounds."""
CPU_LIMIT_S = 1800.0
"""A job estimated longer than this on a CPU is refused without `--force`."""


# ------------------------------------------------------------------------------------------------------- models
@dataclass(frozen=True)
class ModelCheck:
    """Where one configured model resolves, without loading it.

    Fields:
        role: key of `ROLES` (editor, transformer_file, lora, verifier, clip, lpips).
        what: human name of the model.
        key: the config field that names it.
        value: its configured value (None: not set).
        status: `random` (tiny random weights: numbers from it check the pipeline only), `local` (a file or folder
            found), `cached` (a hub id in the local cache), `hub` (a hub id to download on first use),
            `unset` (optional and not set) or `missing`.
        where: the resolved path, the hub id, or why it is missing.
    """

    role: str
    what: str
    key: str
    value: str | None
    status: str
    where: str

    @property
    def ok(self) -> bool:
        return self.status != "missing"


@functools.cache
def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connect to the Hugging Face endpoint (False at once when HF_HUB_OFFLINE is set), so that a machine
    without network is told in seconds, before any per-model request could wait on its timeout."""
    from rl3dedit import hub

    if hub.offline():
        return False
    endpoint = urlparse(hub.endpoint())
    port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
    try:
        socket.create_connection((endpoint.hostname or "", port), timeout=timeout).close()
    except OSError:
        return False
    return True


def _hub_status(repo_id: str, filenames: tuple[str, ...], what: str) -> tuple[str, str]:
    from rl3dedit import hub
    from rl3dedit.errors import HubError

    for filename in filenames:
        cached = hub.cached_path(repo_id, filename)
        if cached is not None:
            return "cached", str(cached)
    if hub.offline():
        return "missing", f"hub id {repo_id!r} is not in the local cache and HF_HUB_OFFLINE is set"
    if not hub_reachable():
        return "missing", f"hub id {repo_id!r} is not in the local cache and the hub is unreachable"
    try:  # one metadata request: says at once whether the repo is gated, private or has no such file
        hub.probe(repo_id, filenames[0], what=what, hint="pass a local path instead", timeout=10.0)
    except HubError as exc:
        return "missing", str(exc)
    return "hub", f"hub id {repo_id!r} (downloaded on first use)"


def _looks_like_path(value: str) -> bool:
    return value.startswith((".", "/", "~")) or Path(value).suffix in {".pt", ".pth", ".safetensors", ".bin"}


def _check_folder_or_hub(value: str, marker: tuple[str, ...], what: str) -> tuple[str, str]:
    path = Path(value).expanduser()
    if path.exists():
        if path.is_dir() and not any((path / name).is_file() for name in marker):
            return "missing", f"{path} holds no {' or '.join(marker)}"
        return "local", str(path)
    if _looks_like_path(value) or value.count("/") != 1:
        return "missing", f"{value!r} does not exist (expected a local {what} or a hub id owner/name)"
    return _hub_status(value, marker, what)


def check_model(role: str, config: RunConfig) -> ModelCheck:
    """Resolve one model role of `config` (see `ModelCheck.status`); never loads or downloads."""
    what, key, _ = ROLES[role]
    section, name = key.split(".")
    value = getattr(getattr(config, section), name)
    if role == "lpips":
        if value is None:
            if config.rewards.allow_random_lpips:
                return ModelCheck(role, what, key, None, "random", "random LPIPS (rewards.allow_random_lpips)")
            return ModelCheck(role, what, key, None, "missing", "not set (training needs LPIPS weights, "
                                                                "see docs/rewards.md)")
        path = Path(value).expanduser()
        status, where = ("local", str(path)) if path.is_file() else ("missing", f"{path} does not exist")
        return ModelCheck(role, what, key, value, status, where)
    if value is None:
        return ModelCheck(role, what, key, None, "unset", "not set")
    if value == "tiny" and role in ("editor", "verifier", "clip"):
        return ModelCheck(role, what, key, value, "random", "tiny random model (checks the pipeline, not quality)")
    if role == "editor":
        status, where = _check_folder_or_hub(value, ("model_index.json",), "diffusers folder")
    elif role == "verifier":
        path = Path(value).expanduser()
        if path.is_file():
            status, where = "local", str(path)
        else:
            status, where = _check_folder_or_hub(value, ("model.safetensors", "model.pt"), "model.pt/.safetensors")
    elif role == "clip":
        status, where = _check_folder_or_hub(value, ("config.json",), "CLIP folder")
    elif role == "lora":
        path = Path(value).expanduser()
        status, where = ("local", str(path)) if path.exists() else ("missing", f"{path} does not exist")
    else:  # transformer_file: a local file or owner/repo/file
        path = Path(value).expanduser()
        parts = value.split("/")
        if path.is_file():
            status, where = "local", str(path)
        elif path.exists() or value.startswith((".", "/", "~")) or len(parts) < 3:
            status, where = "missing", f"{value!r} does not exist (a .safetensors file or owner/repo/file)"
        else:
            status, where = _hub_status("/".join(parts[:2]), ("/".join(parts[2:]),), "transformer file")
    return ModelCheck(role, what, key, value, status, where)


# ------------------------------------------------------------------------------------------------------- device
@dataclass(frozen=True)
class DeviceInfo:
    """The device a run would use and what this machine has."""

    requested: str
    device: str
    torch: str
    cuda: str | None
    """CUDA version torch was built with (None: a CPU build)."""
    gpu_name: str | None
    gpu_total_gib: float | None
    gpu_free_gib: float | None
    host_available_gib: float | None
    cpu_count: int


def host_available_gib() -> float | None:
    """MemAvailable from /proc/meminfo (Linux), else free physical pages; None when unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 / GIB
    except OSError:
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES") / GIB
    except (ValueError, OSError, AttributeError):
        return None


def device_info(requested: str) -> DeviceInfo:
    import torch

    from rl3dedit.config import resolve_device

    device = resolve_device(requested)
    name = total = free = None
    if torch.cuda.is_available():
        index = device.index if device.type == "cuda" and device.index is not None else 0
        name = torch.cuda.get_device_name(index)
        free_b, total_b = torch.cuda.mem_get_info(index)
        total, free = total_b / GIB, free_b / GIB
    return DeviceInfo(requested=requested, device=str(device), torch=torch.__version__, cuda=torch.version.cuda,
                      gpu_name=name, gpu_total_gib=total, gpu_free_gib=free, host_available_gib=host_available_gib(),
                      cpu_count=os.cpu_count() or 1)


def nvcc_version() -> str | None:
    """`nvcc --version`'s release line, or None when nvcc is not on PATH (or CUDA_HOME/bin)."""
    candidates = [shutil.which("nvcc")]
    if os.environ.get("CUDA_HOME"):
        candidates.append(str(Path(os.environ["CUDA_HOME"]) / "bin" / "nvcc"))
    for nvcc in filter(None, candidates):
        try:
            out = subprocess.run([nvcc, "--version"], capture_output=True, text=True, timeout=10).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        lines = [line.strip() for line in out.splitlines() if line.strip()]
        releases = [line for line in lines if "release" in line]
        return (releases or lines or [nvcc])[-1]
    return None


# ------------------------------------------------------------------------------------------- parameter counts
KNOWN_PARAMETERS = {"flux_transformer": 11_901_408_320, "t5_xxl": 4_762_310_656, "clip_l": 123_060_480,
                    "vae": 83_819_683, "vggt_1b": 1_190_596_120, "vggt_1b_with_track_head": 1_256_537_516}
"""`parameter_counts()` of this version, for the quick estimates of every command's preflight (importing diffusers
and transformers to rebuild them takes seconds); a test keeps the two equal."""


@functools.cache
def parameter_counts() -> dict[str, int]:
    """Parameters of the real architectures, counted on models built on the meta device (no memory, no weights).

    FLUX.1-Kontext-dev transformer (19 double + 38 single blocks, width 3072, guidance embedding), T5-XXL encoder
    (24 layers, d_model 4096, gated GELU), CLIP ViT-L/14 text encoder, the FLUX VAE (16 latent channels) and
    VGGT-1B (with and without its tracking head, which the verifier never runs).
    """
    import torch
    from diffusers import AutoencoderKL, FluxTransformer2DModel
    from transformers import CLIPTextConfig, CLIPTextModel, T5Config, T5EncoderModel

    from rl3dedit.geometry.vggt.config import VGGTConfig
    from rl3dedit.geometry.vggt.model import VGGT

    def count(module) -> int:
        return sum(p.numel() for p in module.parameters())

    with torch.device("meta"):
        transformer = FluxTransformer2DModel(guidance_embeds=True)
        t5 = T5EncoderModel(T5Config(vocab_size=32128, d_model=4096, d_kv=64, d_ff=10240, num_layers=24,
                                     num_heads=64, feed_forward_proj="gated-gelu"))
        clip = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                            num_hidden_layers=12, num_attention_heads=12, projection_dim=768))
        vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
                            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512),
                            layers_per_block=2, latent_channels=16, use_quant_conv=False, use_post_quant_conv=False)
        vggt = VGGT(VGGTConfig())
    track = sum(p.numel() for name, p in vggt.named_parameters() if name.startswith("track_head."))
    total_vggt = count(vggt)
    return {"flux_transformer": count(transformer), "t5_xxl": count(t5), "clip_l": count(clip), "vae": count(vae),
            "vggt_1b": total_vggt - track, "vggt_1b_with_track_head": total_vggt}


# ------------------------------------------------------------------------------------------------- estimates
_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


def _grid_tokens(config: RunConfig) -> int:
    """Transformer tokens of one grid edit: packed latents of the target and of the context grid, plus text."""
    v = config.views
    grid_pixels = (v.rows * v.view_size) * (v.cols * v.view_size)
    return 2 * grid_pixels // (16 * 16) + config.editor.max_sequence_length


def _is_real(config: RunConfig) -> bool:
    return config.editor.model != "tiny"


@dataclass(frozen=True)
class JobEstimate:
    """Rough wall time of the edit job's long stages on a CPU (lower bounds), seconds per stage."""

    stages: dict[str, float]

    @property
    def total_s(self) -> float:
        return sum(self.stages.values())


def estimate_cpu_seconds(config: RunConfig, *, fit: bool, edit: bool = True, train: bool = False) -> JobEstimate:
    """Lower-bound CPU seconds of the edit job's stages: editor forward FLOPs at `CPU_FLOPS` (2 x params x tokens
    per step), and fits at `CPU_SECONDS_PER_PIXEL_STEP` (the base fit counted at the view size, though captures are
    often larger). `train`: one GRPO update instead (G rollouts of rl.num_steps forward steps, and
    forward + backward, ~3x, over the window)."""
    stages: dict[str, float] = {}
    if train:
        if _is_real(config):
            rl = config.rl
            forward = 2 * KNOWN_PARAMETERS["flux_transformer"] * _grid_tokens(config) / CPU_FLOPS
            stages["one GRPO update"] = forward * rl.group_size * (rl.num_steps + 3 * rl.window_size)
        return JobEstimate(stages)
    if edit and _is_real(config):
        params = KNOWN_PARAMETERS["flux_transformer"]
        stages["edit"] = 2 * params * _grid_tokens(config) * config.editor.num_steps / CPU_FLOPS
    if edit and config.verifier.model != "tiny":
        tokens = 2 * config.views.num_views * (config.verifier.image_size // 14) ** 2
        stages["verify"] = 2 * KNOWN_PARAMETERS["vggt_1b"] * tokens / CPU_FLOPS
    view_pixels = config.views.view_size ** 2
    r = config.recon
    if fit:
        stages["fit"] = r.fit_iters * r.views_per_step * view_pixels * CPU_SECONDS_PER_PIXEL_STEP
    if edit:
        per_step = r.refit_views_per_step if r.refit_views_per_step is not None else r.views_per_step
        per_step = per_step or config.views.num_views
        stages["refit"] = r.refit_iters * per_step * view_pixels * CPU_SECONDS_PER_PIXEL_STEP
    return JobEstimate(stages)


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 3 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.0f} days"


@dataclass(frozen=True)
class StagePlan:
    """Estimated peak memory of one stage: resident weights (exact from parameter counts) plus an activation
    allowance (rough), and the change to make when it does not fit."""

    stage: str
    resident: list[str]
    weights_gib: float
    activations_gib: float
    peak_gib: float
    fits: bool | None
    fix: str


def memory_plan(config: RunConfig, budget_gib: float | None, counts: dict[str, int] | None = None) -> list[StagePlan]:
    """Peak memory per stage (edit, verify, refit, turntable, train) for `config` against `budget_gib` (free GPU
    memory, or available host memory on a CPU). Tiny models are counted as ~0; real ones from `counts` (default
    `parameter_counts()`, built on the meta device). Activation allowances are rough: transformer activations
    scale with tokens x width, Gaussians' buffers with their count.
    """
    counts = counts or parameter_counts()
    real_editor = _is_real(config)
    real_verifier = config.verifier.model != "tiny"
    eb = _BYTES[config.editor.dtype]
    comps = {"transformer": counts["flux_transformer"], "t5": counts["t5_xxl"], "clip": counts["clip_l"],
             "vae": counts["vae"]} if real_editor else {}
    comp_gib = {name: n * eb / GIB for name, n in comps.items()}
    if real_editor and config.editor.quantize == "int8":
        comp_gib["transformer"] = comps["transformer"] / GIB  # int8 weight-only: one byte per parameter
    offload = config.editor.offload
    tokens = _grid_tokens(config)
    plans: list[StagePlan] = []

    def add(stage: str, resident: list[str], weights: float, activations: float, fix: str) -> None:
        peak = weights + activations
        fits = None if budget_gib is None else peak <= budget_gib
        plans.append(StagePlan(stage, resident, round(weights, 2), round(activations, 2), round(peak, 2), fits, fix))

    # FLUX: width 3072, 19 double + 38 single blocks. edit: one grid through the transformer with memory-efficient
    # attention (no tokens^2 matrix): a few dozen width-sized activations per token are live at once (rough).
    act = tokens * 3072 * eb * 24 / GIB if real_editor else 0.05
    if not real_editor:
        add("edit", ["tiny FLUX pipeline"], 0.0, act, "")
    elif offload == "none":
        add("edit", [f"{k} ({v:.1f} GiB)" for k, v in comp_gib.items()], sum(comp_gib.values()), act,
            "--set editor.offload=model (one component on the GPU at a time)")
    elif offload == "model":
        add("edit", ["largest component at a time (transformer)"], max(comp_gib.values()), act,
            "--set editor.quantize=int8 (transformer in half the memory) or --set editor.offload=sequential")
    else:
        add("edit", ["one transformer block at a time"], comp_gib["transformer"] / 57, act, "")
    vggt_gib = counts["vggt_1b"] * 4 / GIB if real_verifier else 0.01
    frames = config.views.num_views * 2
    vtokens = (config.verifier.image_size // 14) ** 2
    # VGGT: width-1024 tokens of every frame through the aggregator (rough), ~0.4 GiB per frame in the DPT heads.
    vact = frames * vtokens * 1024 * 4 * 8 / GIB + (config.verifier.frames_chunk_size or frames) * 0.4 * real_verifier
    add("verify", ["VGGT-1B (fp32)" if real_verifier else "tiny VGGT"], vggt_gib, vact,
        "--set verifier.frames_chunk_size=1 (DPT heads one frame at a time)")
    gaussians = config.recon.max_gaussians
    views_gib = config.views.num_views * 3 * config.views.view_size ** 2 * 4 / GIB
    gauss_gib = gaussians * 59 * 4 * 4 / GIB  # params, grads and two Adam moments of 59 floats each
    ract = config.views.view_size ** 2 * 4 * 64 / GIB + gaussians * 200 / GIB
    add("refit", [f"{gaussians:,} Gaussians + optimiser", f"{config.views.num_views} edited views"],
        gauss_gib + views_gib, ract, "--set recon.max_gaussians=N (fewer Gaussians)")
    # gsplat's expanded SH coefficients: ~0.2 GiB per view per million Gaussians at SH degree 3 (render/config.py).
    chunk = config.render.chunk_size
    tact = chunk * 0.2 * gaussians / 1e6 * (config.recon.sh_degree + 1) ** 2 / 16
    add("turntable", [f"{gaussians:,} Gaussians"], gaussians * 59 * 4 / GIB, tact,
        "--set render.chunk_size=1 (views per rasterizer call)")
    if real_editor:
        # GRPO: the transformer (frozen, bf16) with a LoRA, gradients through a window of steps (checkpointed),
        # the verifier for rewards; the text encoders run once per prompt and can be offloaded.
        lora = config.rl.lora_rank * 2 * 3072 * 4 * 57 * 4 * 3 / GIB
        tact_train = act * (2 if config.rl.gradient_checkpointing else 12)
        add("train", ["transformer + LoRA", "VGGT-1B", "VAE"], comp_gib["transformer"] + lora + vggt_gib
            + comp_gib["vae"], tact_train,
            "--set rl.gradient_checkpointing=true, --set editor.quantize=int8, or several GPUs (accelerate)")
    else:
        add("train", ["tiny FLUX pipeline + LoRA", "tiny VGGT"], 0.0, 0.1, "")
    return plans


# ---------------------------------------------------------------------------------------------------- preflight
@dataclass
class Preflight:
    """What a command would run with, and everything that stops it (each problem names its fix)."""

    command: str
    preset: str
    models: list[ModelCheck]
    device: DeviceInfo
    out_dir: str | None = None
    disk_free_gib: float | None = None
    estimate: JobEstimate | None = None
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def random_models(self) -> list[str]:
        """Models with random weights: every number they produce checks the pipeline only."""
        return [m.what for m in self.models if m.status == "random"]

    def message(self) -> str:
        lines = [f"cannot start `rl3dedit {self.command}` (preset {self.preset}); fix all of these first:"]
        lines += [f"  - {problem}" for problem in self.problems]
        return "\n".join(lines)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["random_models"] = self.random_models
        data["estimate"] = None if self.estimate is None else {
            "stages_s": self.estimate.stages, "total_s": self.estimate.total_s}
        return data


def disk_free_gib(path: Path) -> float | None:
    """Free space of the file system `path` (or its nearest existing parent) would be written to, in GiB."""
    probe = path.expanduser().resolve()
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free / GIB
    except OSError:
        return None


def model_flag(role: str, command_flags: dict[str, str] | None) -> str:
    """The flag this command has for `role`, else the generic `--set key=...`."""
    _, key, _ = ROLES[role]
    if command_flags and role in command_flags:
        return command_flags[role]
    return f"--set {key}="


def preflight(
    config: RunConfig,
    *,
    command: str,
    out_dir: Path | None = None,
    force: bool = False,
    roles: tuple[str, ...] | None = None,
    flags: dict[str, str] | None = None,
    fit: bool = False,
    edit: bool = True,
    train: bool = False,
) -> Preflight:
    """Check a command's models, device and output folder before it loads anything (module docstring).

    `roles`: the models the command loads (default `COMMAND_MODELS[command]`); `flags`: role -> the flag this
    command has for it (else problems name `--set key=value`); `fit`/`edit`/`train`: whether the job fits a base
    3DGS / runs the edit stages / trains (for the CPU estimate); `force`: run a job estimated longer than `CPU_LIMIT_S` on a CPU.
    """
    roles = COMMAND_MODELS.get(command, ()) if roles is None else roles
    if command in ("edit", "demo") and config.rewards.view_reward != "consistency":
        roles = tuple(r for r in roles if r != "verifier")  # the QA stage then uses a check without VGGT
    models = [check_model(role, config) for role in roles]
    device_problem = None
    try:
        device = device_info(config.device)
    except (RuntimeError, ValueError) as exc:  # a malformed device, or CUDA asked for where there is none
        device_problem, device = str(exc), device_info("cpu")
    result = Preflight(command=command, preset=config.name, models=models, device=device)
    if device_problem is not None:
        result.problems.append(device_problem)
    elif device.device.startswith("cuda") and device.gpu_name is None:
        result.problems.append(f"device {config.device!r} asked for, but torch ({device.torch}) sees no CUDA device; "
                               "pass --device cpu (or auto), or install the CUDA build of torch")
    for m in models:
        if m.ok:
            continue
        flag = model_flag(m.role, flags)
        hint = f"pass {flag}PATH" if flag.endswith("=") else f"pass {flag} PATH"
        if m.role in ("editor", "verifier", "clip"):
            hint += " (or tiny for the offline random model)"
        result.problems.append(f"{m.what} ({m.key} = {m.value!r}): {m.where}; {hint}")
    if out_dir is not None:  # whether the folder may be written is the CLI's check (pipeline.outputs)
        result.out_dir = str(out_dir)
        result.disk_free_gib = disk_free_gib(out_dir)
    if device.device == "cpu" and (fit or edit or train):
        result.estimate = estimate_cpu_seconds(config, fit=fit, edit=edit, train=train)
        total = result.estimate.total_s
        if total > CPU_LIMIT_S:
            parts = ", ".join(f"{k} {format_duration(v)}" for k, v in result.estimate.stages.items())
            text = (f"this is a GPU-sized job (preset {config.name}) but the device is the CPU: estimated at least "
                    f"{format_duration(total)} here ({parts})")
            if force:
                result.notes.append(text + "; running anyway (--force)")
            else:
                result.problems.append(text + ". Run it on a CUDA GPU, use --preset tiny for a pipeline check, "
                                              "or pass --force to run it anyway")
    return result
