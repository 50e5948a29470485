"""The inference API: a trained checkpoint turns log-mels into waveforms.

    voc = Vocoder.from_checkpoint("run/checkpoints/step-00010000.pt", device="cpu")
    wav = voc(mel, steps=6)                  # or schedule="<name stored in the checkpoint>", eta=0.0
    wavs = voc.vocode_batch([mel_a, mel_b], steps=50, seed=0)   # clips of different lengths

Long inputs: windows and seams
------------------------------
A clip longer than ``chunk_frames + overlap_frames`` frames is covered by windows of exactly
``W = chunk_frames + overlap_frames`` frames that start every ``chunk_frames`` frames (the last one is
right-aligned to the clip's end, so every window of a long clip has the same length and windows of
different clips batch together without padding). Consecutive windows share at least
``overlap_frames`` frames.

The seams are treated *inside* the sampler, at every step, not on the finished audio: there is one
waveform state ``x_t`` per clip, and at each step the denoiser runs on every window (in mini-batches of
``batch_size`` windows, so activation memory depends on ``W`` and ``batch_size``, not on the clip's
length) and the windows' predicted noises ``eps`` are joined into one ``eps`` for the whole clip by a
**linear crossfade**. Of each overlap, the outer quarter on either side is context only (weight 0 for
the window that ends or starts there) and the crossfade runs over its middle half; with the default
``overlap_frames=32`` each window therefore sees 8 frames (≈ 93 ms at hop 256 / 22.05 kHz) of real
context beyond any sample it contributes to, more than WaveGrad's per-step receptive field of ±5 frames
(measured for the default factors/dilations, whatever the widths). The two windows' ``eps`` then agree
to float rounding across the crossfade, so the chunked trajectory equals the unchunked one up to float
rounding (tests/test_vocoder_api.py); the crossfade only matters when ``overlap_frames`` is made
smaller than about 4 x the receptive field. Linear (not equal-power) because the two estimates are
almost identical, i.e. fully correlated: a linear crossfade keeps their amplitude, an equal-power one
would boost it by up to 3 dB mid-seam. Because all windows share one noise draw per step (DDPM, eta > 0)
the seams carry no change of random realisation either. Joining independently sampled chunk *outputs*
would not have this property (two random realisations crossfaded: a level dip and phase smearing).

Memory: the network's activations are bounded by ``batch_size`` windows of ``W`` frames; per clip
only O(length) vectors are kept (the state ``x_t``, the joined ``eps``, the noise, the output).

Batches of clips of different lengths
-------------------------------------
``vocode_batch`` sorts windows by length and pads shorter ones (clips shorter than ``W``) in a
mini-batch: the log-mel with its floor ``ln(log_floor)`` (silence), the waveform state with zeros; each
output is trimmed to ``frames_i * hop``.

Determinism (``vocode_batch``): clip ``i`` of the list draws all its noise (the start and, for
eta > 0, every step's) from its own CPU generator seeded with ``seed + i``, so the noise a clip
receives does not depend on ``batch_size``, on the other clips, or on the device. Hence
* a clip of at least ``W`` frames (never padded) gives the same waveform whatever the batch
  composition, up to float rounding of the network for a different mini-batch size (~1e-6);
* so does a shorter clip when it is not padded, i.e. batched only with clips of its own length
  (or ``batch_size=1``); padded next to a longer clip, its last few frames (the receptive field,
  ~5 frames per step, compounding over steps) can differ slightly, the rest does not;
* ``vocode_batch(mels, seed=s)[i]`` equals ``voc(mels[i], generator=torch.Generator().manual_seed(s + i))``.
``__call__`` keeps the single-generator semantics of :func:`vocode` / ``sample`` (the ``[B, T]`` noise
is drawn from ``generator`` at once), and for inputs that fit in one window it is bitwise :func:`vocode`.
"""
from __future__ import annotations

import contextlib
import math
import warnings
from pathlib import Path
from typing import Callable, Sequence

import torch
from tqdm.auto import tqdm

from .audio import MelConfig, MelFeaturizer
from .checkpoint import load_checkpoint, load_family_checkpoint, rebuilding_from, save_checkpoint
from .diffusion import NoiseSchedule, check_eta, sample
from .diffusion._util import randn
from .diffusion.sampling import ddim_step
from .errors import UserInputError
from .models import WaveGrad, WaveGradConfig

# ≈ 3 s at hop 256 / 22.05 kHz. Measured for base on 2 CPU cores (15 s of audio): 256 frames ran at
# 0.58 s/it per audio-s and 1.0 GB peak RSS, 512 at 0.76 s and 1.4 GB (activations of a 6 s window
# fall out of cache), 128 at 0.56 s but 25% of its work is overlap.
DEFAULT_CHUNK_FRAMES = 256
DEFAULT_OVERLAP_FRAMES = 32    # ≈ 0.37 s: 8 frames of context each side + a 16-frame crossfade
DEFAULT_BATCH_SIZE = 4         # windows per network call in vocode_batch off the CPU
PRECISIONS = ("fp32", "bf16")


def check_precision(precision) -> str:
    """``"fp32"`` or ``"bf16"`` (bf16: the network runs under ``torch.autocast(bfloat16)``)."""
    if precision not in PRECISIONS:
        raise UserInputError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    return precision


def cpu_has_fast_bf16() -> bool:
    """Whether oneDNN has hardware bf16 here (AVX512-BF16/AMX); without it bf16 convs on the CPU take
    slow reference kernels (measured on an AVX2-only host: ~25x slower than fp32)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def network_autocast(device: torch.device | str, precision: str):
    """The context the network calls run in: bf16 autocast for ``precision="bf16"``, else nothing.

    Only the network goes under it; the schedule arithmetic, the state ``x_t`` and the joined ``eps``
    stay float32 (the network's output is cast back before the update).
    """
    if check_precision(precision) == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def save_vocoder_checkpoint(path: str | Path, model: WaveGrad, mel_config: MelConfig,
                            train_schedule: NoiseSchedule, schedules: dict[str, NoiseSchedule] | None = None) -> Path:
    """A minimal inference checkpoint (no optimizer state): the weights serve as EMA and raw weights."""
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(path, {
        "family": "vocoder", "model_config": model.cfg.to_dict(), "mel_config": mel_config.to_dict(),
        "schedule": train_schedule.to_dict(), "schedules": {k: v.to_dict() for k, v in (schedules or {}).items()},
        "model": weights, "ema": {"shadow": weights}, "step": 0})


@torch.inference_mode()
def vocode(model: WaveGrad, mel: torch.Tensor, schedule: NoiseSchedule, *, eta: float = 1.0,
           generator: torch.Generator | None = None, clip: float | None = 1.0,
           progress: bool = False, precision: str = "fp32") -> torch.Tensor:
    """``mel [B, n_mels, frames] -> wav [B, frames * hop]`` by ``sample`` over ``schedule``.

    The mel features are encoded once per utterance, not once per step; ``clip`` bounds the
    predicted clean signal to the audio range [-clip, clip] (guards runaway amplitude).
    ``precision="bf16"`` runs the network calls under bf16 autocast (the sampler stays fp32).
    """
    with network_autocast(mel.device, precision):
        mel_features = model.encode_mel(mel)  # [B, mel_ch, frames]

    def denoise(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        with network_autocast(mel.device, precision):
            return model.denoise(x, model.noise_embeddings(level), mel_features).to(x.dtype)

    shape = (mel.shape[0], mel.shape[-1] * model.cfg.hop_length)
    return sample(denoise, shape, schedule, eta=eta, generator=generator, device=mel.device,
                  dtype=mel.dtype, clip_x0=clip, progress=progress)


def plan_windows(frames: int, chunk_frames: int | None, overlap_frames: int) -> list[tuple[int, int]]:
    """Frame ranges ``[(start, stop), ...]`` of the windows covering ``frames`` frames (module docstring).

    One window ``[0, frames)`` when chunking is off (``chunk_frames=None``) or the clip fits in
    ``chunk_frames + overlap_frames``; otherwise windows of exactly that length every ``chunk_frames``,
    the last one right-aligned to the end.
    """
    width = None if chunk_frames is None else chunk_frames + overlap_frames
    if width is None or frames <= width:
        return [(0, frames)]
    starts = list(range(0, frames - width, chunk_frames)) + [frames - width]
    return [(a, a + width) for a in starts]


def crossfade_weights(windows: Sequence[tuple[int, int]], hop: int, overlap_frames: int) -> list[torch.Tensor | None]:
    """Per-window sample weights that join the windows' outputs (None: weight 1 everywhere).

    Around each boundary (the middle of the overlap of windows j and j+1) window j fades out and
    window j+1 fades in linearly over ``2 h`` samples; the weights of the two sum to 1 exactly and
    no sample is covered by more than two non-zero weights. ``h`` is a quarter of the nominal overlap
    (so each window keeps a quarter of the overlap as pure context beyond its last non-zero weight),
    capped by the actual overlap and by half the distance to the neighbouring boundaries. With no
    overlap the windows are cut hard at the boundary.
    """
    n = len(windows)
    if n == 1:
        return [None]
    bounds = [hop * (windows[j + 1][0] + windows[j][1]) // 2 for j in range(n - 1)]       # samples
    halves = []
    for j in range(n - 1):
        h = hop * overlap_frames // 4
        h = min(h, hop * (windows[j][1] - windows[j + 1][0]) // 4)      # keep >= 1/4 of the real overlap as context
        if j > 0:
            h = min(h, (bounds[j] - bounds[j - 1]) // 2)
        if j < n - 2:
            h = min(h, (bounds[j + 1] - bounds[j]) // 2)
        halves.append(max(h, 0))

    def fade_in(t: torch.Tensor, j: int) -> torch.Tensor:        # 0 -> 1 around bounds[j]
        b, h = bounds[j], halves[j]
        if h == 0:
            return (t >= b).to(torch.float32)
        return ((t + 0.5 - (b - h)) / (2 * h)).clamp(0.0, 1.0)

    weights = []
    for j, (a, z) in enumerate(windows):
        t = torch.arange(a * hop, z * hop, dtype=torch.float64)
        w = torch.ones_like(t)
        if j > 0:
            w = w * fade_in(t, j - 1)
        if j < n - 1:
            w = w * (1.0 - fade_in(t, j))
        weights.append(w.to(torch.float32))
    return weights


NoiseDraw = Callable[[], list]


def _sample_clips(model: WaveGrad, mels: Sequence[torch.Tensor], schedule: NoiseSchedule, *, eta: float,
                  draw_noise: NoiseDraw, chunk_frames: int | None, overlap_frames: int, batch_size: int,
                  pad_value: float, clip: float | None = 1.0, progress: bool = False,
                  precision: str = "fp32") -> list[torch.Tensor]:
    """The windowed sampler: ``mels [n_mels, frames_i]`` -> ``wavs [frames_i * hop]``.

    ``draw_noise()`` returns one standard-normal tensor ``[frames_i * hop]`` per clip; it is called for
    the start ``x_T`` and then once per step where the sampler adds noise, in the order of
    :func:`wavegrad.diffusion.sample`, whose DDIM/DDPM update (``ddim_step``) this loop shares.
    """
    hop = model.cfg.hop_length
    device, dtype = mels[0].device, mels[0].dtype
    windows = []                                                   # (clip, start frame, stop frame, weight)
    for c, mel in enumerate(mels):
        plan = plan_windows(mel.shape[-1], chunk_frames, overlap_frames)
        for (a, z), w in zip(plan, crossfade_weights(plan, hop, overlap_frames)):
            windows.append((c, a, z, None if w is None else w.to(device, dtype)))
    order = sorted(range(len(windows)), key=lambda k: windows[k][1] - windows[k][2])    # longest first (stable)
    batches = [[windows[k] for k in order[i:i + batch_size]] for i in range(0, len(order), batch_size)]

    def mel_batch(batch) -> torch.Tensor:                         # [b, n_mels, L], padded with silence
        longest = max(z - a for _, a, z, _ in batch)
        out = torch.full((len(batch), mels[0].shape[0], longest), pad_value, device=device, dtype=dtype)
        for r, (c, a, z, _) in enumerate(batch):
            out[r, :, :z - a] = mels[c][:, a:z]
        return out

    autocast = lambda: network_autocast(device, precision)         # noqa: E731  (network calls only)
    with autocast():
        features = [model.encode_mel(mel_batch(b)) for b in batches]   # [b, mel_ch, L]: once per clip, not per step
    xs = [x.to(device, dtype) for x in draw_noise()]
    abar = schedule.alphas_cumprod.tolist()                       # float64 -> exact Python floats
    for i in tqdm(reversed(range(len(abar))), total=len(abar), disable=not progress, desc="sampling", leave=False):
        abar_t, abar_prev = abar[i], (abar[i - 1] if i > 0 else 1.0)
        eps = [torch.zeros_like(x) for x in xs]
        for batch, feats in zip(batches, features):
            longest = feats.shape[-1] * hop
            x_in = torch.zeros((len(batch), longest), device=device, dtype=dtype)
            for r, (c, a, z, _) in enumerate(batch):
                x_in[r, :(z - a) * hop] = xs[c][a * hop:z * hop]
            level = torch.full((len(batch),), math.sqrt(abar_t), device=device, dtype=dtype)  # [b]
            with autocast():
                out = model.denoise(x_in, model.noise_embeddings(level), feats)
            out = out.to(dtype)                                                                  # [b, L * hop]
            for r, (c, a, z, w) in enumerate(batch):
                piece = out[r, :(z - a) * hop]
                if w is None:
                    eps[c][a * hop:z * hop] = piece
                else:
                    eps[c][a * hop:z * hop] += w * piece
        noise = draw_noise() if (eta > 0 and i > 0) else [None] * len(xs)
        xs = [ddim_step(x, e, abar_t, abar_prev, eta, None if n is None else n.to(device, dtype), clip)
              for x, e, n in zip(xs, eps, noise)]
    return xs


def _check_positive_int(name: str, value, allow_none: bool = False, minimum: int = 1) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserInputError(f"{name} must be an integer >= {minimum}{' or None' if allow_none else ''}, got {value!r}")


class Vocoder:
    """A WaveGrad network (EMA weights) with its mel front end and its noise schedules."""

    def __init__(self, model: WaveGrad, mel_config: MelConfig, train_schedule: NoiseSchedule,
                 schedules: dict[str, NoiseSchedule] | None = None, device: str | torch.device = "cpu",
                 precision: str = "fp32"):
        self.precision = check_precision(precision)    # "bf16": network calls under bf16 autocast
        self.device = torch.device(device)
        if self.precision == "bf16" and self.device.type == "cpu" and not cpu_has_fast_bf16():
            warnings.warn("bf16 was asked for on a CPU without hardware bf16: it will be much slower than "
                          "fp32 here (use precision='fp32')", stacklevel=2)
        self.model = model.to(self.device).eval()
        self.mel_config = mel_config
        self.train_schedule = train_schedule
        self.schedules = dict(schedules or {})
        self.featurizer = MelFeaturizer(mel_config).to(self.device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True,
                        precision: str = "fp32") -> "Vocoder":
        check_precision(precision)
        ckpt = load_family_checkpoint(path, "vocoder", "a vocoder")
        with rebuilding_from(path, "vocoder", "re-export it with this wavegrad"):
            model = WaveGrad(WaveGradConfig.from_dict(ckpt["model_config"]))
            weights = ckpt["ema"]["shadow"] if use_ema else ckpt["model"]
            model.load_state_dict(weights)
            schedules = {k: NoiseSchedule.from_dict(v) for k, v in ckpt.get("schedules", {}).items()}
            mel_config, train_schedule = MelConfig.from_dict(ckpt["mel_config"]), NoiseSchedule.from_dict(ckpt["schedule"])
        return cls(model, mel_config, train_schedule, schedules, device, precision=precision)

    def add_schedule(self, path: str | Path, name: str, schedule: NoiseSchedule) -> None:
        """Store ``schedule`` under ``name`` in the checkpoint at ``path`` (atomic: on any failure the
        old file stays intact) and in this Vocoder."""
        ckpt = load_checkpoint(path)
        ckpt.setdefault("schedules", {})[name] = schedule.to_dict()
        ckpt.pop("format"), ckpt.pop("version")
        save_checkpoint(path, ckpt)
        self.schedules[name] = schedule

    def resolve_schedule(self, steps: int | None = None, schedule: str | NoiseSchedule | None = None) -> NoiseSchedule:
        """``schedule`` (a stored name or a NoiseSchedule) wins; else the training schedule respaced to ``steps``."""
        if isinstance(schedule, NoiseSchedule):
            return schedule
        if schedule is not None:
            if schedule not in self.schedules:
                known = ", ".join(sorted(self.schedules)) or "none"
                raise UserInputError(f"no schedule named {schedule!r} in this checkpoint (stored: {known}); "
                                     f"run `wavegrad search-schedule` or pass steps=N")
            return self.schedules[schedule]
        n = len(self.train_schedule) if steps is None else steps
        if not isinstance(n, int) or not 1 <= n <= len(self.train_schedule):
            raise UserInputError(f"steps must be an integer in [1, {len(self.train_schedule)}], got {steps!r}")
        return self.train_schedule.respace(n)

    def check_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Validate and batch a log-mel: [n_mels, frames] or [B, n_mels, frames] -> [B, n_mels, frames]."""
        mel = torch.as_tensor(mel)
        if mel.ndim == 2:
            mel = mel.unsqueeze(0)
        n_mels = self.mel_config.n_mels
        if mel.ndim != 3:
            raise UserInputError(f"mel must be [n_mels, frames] or [B, n_mels, frames], got shape {tuple(mel.shape)}")
        if mel.shape[1] != n_mels:
            hint = " (is it [frames, n_mels]? transpose it)" if mel.shape[2] == n_mels else ""
            raise UserInputError(f"mel has {mel.shape[1]} bands, this vocoder expects {n_mels}{hint}")
        if mel.shape[2] < 1:
            raise UserInputError("mel has no frames")
        if not torch.isfinite(mel).all():
            raise UserInputError("mel contains NaN or inf values")
        return mel.to(self.device, torch.float32)

    @property
    def hop_length(self) -> int:
        return self.model.cfg.hop_length

    @property
    def silence_level(self) -> float:
        """The log-mel of silence, ``ln(log_floor)``: the value clips are padded with."""
        return math.log(self.mel_config.log_floor)

    @torch.inference_mode()
    def __call__(self, mel: torch.Tensor, steps: int | None = None, schedule: str | NoiseSchedule | None = None,
                 eta: float = 1.0, generator: torch.Generator | None = None, progress: bool = False, *,
                 chunk_frames: int | None = DEFAULT_CHUNK_FRAMES, overlap_frames: int = DEFAULT_OVERLAP_FRAMES,
                 batch_size: int | None = None) -> torch.Tensor:
        """Log-mel [n_mels, frames] -> wav [frames * hop]; [B, n_mels, frames] -> [B, frames * hop].

        Inputs longer than ``chunk_frames + overlap_frames`` are vocoded in overlapping windows
        (module docstring; ``chunk_frames=None`` turns that off), ``batch_size`` windows per network
        call (default: B). The noise is drawn from ``generator`` as one ``[B, frames * hop]`` tensor
        per draw, as :func:`vocode` does; use :meth:`vocode_batch` for per-clip seeds.
        """
        squeeze = torch.as_tensor(mel).ndim == 2
        mel = self.check_mel(mel)
        sched = self.resolve_schedule(steps, schedule)
        eta = check_eta(eta)
        _check_positive_int("chunk_frames", chunk_frames, allow_none=True)
        _check_positive_int("overlap_frames", overlap_frames, minimum=0)
        _check_positive_int("batch_size", batch_size, allow_none=True)
        shape = (mel.shape[0], mel.shape[-1] * self.hop_length)

        def draw() -> list[torch.Tensor]:
            return list(randn(shape, generator, self.device, mel.dtype).unbind(0))

        wavs = _sample_clips(self.model, list(mel.unbind(0)), sched, eta=eta, draw_noise=draw,
                             chunk_frames=chunk_frames, overlap_frames=overlap_frames,
                             batch_size=batch_size or mel.shape[0], pad_value=self.silence_level,
                             progress=progress, precision=self.precision)
        wav = torch.stack(wavs)
        return wav[0] if squeeze else wav

    @torch.inference_mode()
    def vocode_batch(self, mels: Sequence[torch.Tensor], steps: int | None = None,
                     schedule: str | NoiseSchedule | None = None, eta: float = 1.0, *, seed: int | None = None,
                     generator: torch.Generator | None = None, batch_size: int | None = None,
                     chunk_frames: int | None = DEFAULT_CHUNK_FRAMES, overlap_frames: int = DEFAULT_OVERLAP_FRAMES,
                     progress: bool = False) -> list[torch.Tensor]:
        """Log-mels ``[n_mels, frames_i]`` of any lengths -> waveforms ``[frames_i * hop]`` (on ``self.device``).

        Clip ``i`` draws its noise from a CPU generator seeded with ``seed + i`` (``seed`` None: one base
        seed drawn from ``generator``, or from torch's global RNG without one); see "Determinism" in
        the module docstring for what that makes independent of ``batch_size`` and of the other clips.
        Clips are grouped (longest first) so that one group holds about ``batch_size`` windows, and the
        group's windows run ``batch_size`` at a time; long clips are windowed as in :meth:`__call__`.
        ``batch_size=None``: 1 on CPU (one window keeps the cores busy; four per call measured no faster
        and took 1.8x the memory), ``DEFAULT_BATCH_SIZE`` on other devices.
        """
        mels = list(mels)
        checked = []
        for i, mel in enumerate(mels):
            if torch.as_tensor(mel).ndim != 2:
                raise UserInputError(f"mel #{i}: vocode_batch takes a list of [n_mels, frames] log-mels, got shape "
                                     f"{tuple(torch.as_tensor(mel).shape)}")
            try:
                checked.append(self.check_mel(mel)[0])
            except UserInputError as e:
                raise UserInputError(f"mel #{i}: {e}") from None
        sched = self.resolve_schedule(steps, schedule)
        eta = check_eta(eta)
        _check_positive_int("batch_size", batch_size, allow_none=True)
        if batch_size is None:
            batch_size = 1 if self.device.type == "cpu" else DEFAULT_BATCH_SIZE
        _check_positive_int("chunk_frames", chunk_frames, allow_none=True)
        _check_positive_int("overlap_frames", overlap_frames, minimum=0)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (), generator=generator,
                                     device=generator.device if generator is not None else "cpu"))
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UserInputError(f"seed must be an integer, got {seed!r}")

        # groups of clips holding about batch_size windows, longest clips first
        order = sorted(range(len(checked)), key=lambda i: -checked[i].shape[-1])
        groups, current, budget = [], [], 0
        for i in order:
            n = len(plan_windows(checked[i].shape[-1], chunk_frames, overlap_frames))
            if current and budget + n > batch_size:
                groups.append(current)
                current, budget = [], 0
            current.append(i)
            budget += n
        if current:
            groups.append(current)

        results: list[torch.Tensor | None] = [None] * len(checked)
        for group in groups:
            gens = [torch.Generator(device="cpu").manual_seed(seed + i) for i in group]
            lengths = [checked[i].shape[-1] * self.hop_length for i in group]

            def draw(gens=gens, lengths=lengths) -> list[torch.Tensor]:
                return [randn((n,), g, self.device, torch.float32) for g, n in zip(gens, lengths)]

            wavs = _sample_clips(self.model, [checked[i] for i in group], sched, eta=eta, draw_noise=draw,
                                 chunk_frames=chunk_frames, overlap_frames=overlap_frames, batch_size=batch_size,
                                 pad_value=self.silence_level, progress=progress, precision=self.precision)
            for i, wav in zip(group, wavs):
                results[i] = wav
        return results
