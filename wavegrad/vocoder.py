"""The inference API: a trained checkpoint turns log-mels into waveforms.

    voc = Vocoder.from_checkpoint("run/checkpoints/step-00010000.pt", device="cpu")
    wav = voc(mel, steps=6)                  # or schedule="<name stored in the checkpoint>", eta=0.0
    wav = voc(mel, sampler="heun", nfe=11, schedule="karras")  # any sampler, any schedule, cost in NFE
    wavs = voc.vocode_batch([mel_a, mel_b], steps=50, seed=0)   # clips of different lengths

Every call goes through :func:`wavegrad.diffusion.sample` with the network bound by
:class:`wavegrad.long_form.WindowedDenoiser` (long inputs in overlapping windows, see that module):
there is no sampling loop here. Schedules: ``"respaced"`` (the training schedule respaced uniformly,
the default), ``"karras"`` (Karras et al.'s rho = 7 spacing between the trained sigma range), a name
stored in the checkpoint (``search-schedule``), or a :class:`NoiseSchedule`; their length comes from
``steps``, or from ``nfe`` through the sampler's cost (:func:`wavegrad.diffusion.steps_for_nfe`).


Batches of clips of different lengths: shorter windows are padded with the log-mel of silence
``ln(log_floor)``, each output is trimmed to ``frames_i * hop``.

Determinism (``vocode_batch``): clip ``i`` of the list draws all its noise (the start and, for
a stochastic sampler, every step's) from its own CPU generator seeded with ``seed + i``, so the noise a clip
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

import dataclasses
import functools
import math
import warnings
from pathlib import Path
from typing import Callable, Sequence

import torch

from .audio import MelConfig, MelFeaturizer
from .audio.consistency import Consistency, MelConsistentDenoiser, why_no_pseudo_inverse
from .audio.conventions import check_values
from .audio.priors import PriorConfig, build_prior
from .checkpoint import (find_checkpoint, is_pretrained_folder, load_checkpoint, load_family_checkpoint,
                         load_pretrained_folder, rebuilding_from, save_checkpoint, save_pretrained_folder)
from .config import from_dict, to_dict
from .diffusion import NoiseSchedule, Prior, Step, plan_sampling, sample
from .diffusion.inpaint import inpaint
from .diffusion._util import randn
from .errors import UserInputError
from .long_form import WindowedDenoiser
from .models import VOCODERS, WaveGrad, vocoder_architecture
from .models.precision import check_precision, cpu_has_fast_bf16

# ≈ 3 s at hop 256 / 22.05 kHz. Measured for base on 2 CPU cores (15 s of audio): 256 frames ran at
# 0.58 s/it per audio-s and 1.0 GB peak RSS, 512 at 0.76 s and 1.4 GB (activations of a 6 s window
# fall out of cache), 128 at 0.56 s but 25% of its work is overlap.
DEFAULT_CHUNK_FRAMES = 256
DEFAULT_OVERLAP_FRAMES = 32    # ≈ 0.37 s: 8 frames of context each side + a 16-frame crossfade
DEFAULT_BATCH_SIZE = 4         # windows per network call in vocode_batch off the CPU
CLIP = 1.0                     # x0 estimates are clamped to the audio range [-1, 1]


def save_vocoder_checkpoint(path: str | Path, model, mel_config: MelConfig,
                            train_schedule: NoiseSchedule, schedules: dict[str, NoiseSchedule] | None = None,
                            prior: PriorConfig | None = None, prior_stats: dict | None = None,
                            consistency: Consistency | None = None) -> Path:
    """A minimal inference checkpoint of a WaveGrad or DiffWave network (no optimizer state): the weights serve as
    EMA and raw weights; ``consistency`` is the default of calls that name none (off when None)."""
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(path, {
        "family": "vocoder", "architecture": vocoder_architecture(model), "model_config": model.cfg.to_dict(),
        "mel_config": mel_config.to_dict(),
        "schedule": train_schedule.to_dict(), "schedules": {k: v.to_dict() for k, v in (schedules or {}).items()},
        "prior": {"config": to_dict(prior or PriorConfig()), "stats": dict(prior_stats or {})},
        "consistency": to_dict(consistency or Consistency()),
        "model": weights, "ema": {"shadow": weights}, "step": 0})


@torch.inference_mode()
def vocode(model: WaveGrad, mel: torch.Tensor, schedule: NoiseSchedule, *, sampler: str | None = None,
           eta: float | None = None, generator: torch.Generator | None = None, clip: float | None = CLIP,
           progress: bool = False, precision: str = "fp32", callback: Callable[[Step], None] | None = None,
           prior: Prior | None = None, **options) -> torch.Tensor:
    """``mel [B, n_mels, frames] -> wav [B, frames * hop]``: ``sample`` with the network bound to the mel.

    The mel features are encoded once per utterance, not once per step; ``clip`` bounds every x0 estimate
    to the audio range [-clip, clip] (guards runaway amplitude). ``precision="bf16"`` runs the network
    calls under bf16 autocast (the sampler stays fp32). ``prior``: the noise prior bound to ``mel`` (white if None).
    """
    denoise = WindowedDenoiser(model, list(mel), precision=precision)
    shape = (mel.shape[0], mel.shape[-1] * model.cfg.hop_length)
    return sample(denoise, shape, schedule, sampler=sampler, eta=eta, generator=generator, device=mel.device,
                  dtype=mel.dtype, clip_x0=clip, progress=progress, callback=callback, prior=prior, **options)


def _unpad(mels, lengths) -> list:
    """A list of [n_mels, frames] mels from a list, or from a padded [B, n_mels, F] batch cut to ``lengths``."""
    if isinstance(mels, torch.Tensor) and mels.ndim == 3:
        mels = list(mels.unbind(0))
    elif lengths is not None and not isinstance(mels, (list, tuple)):
        raise UserInputError("lengths go with a padded batch [B, n_mels, F] (or a list of mels)")
    if lengths is None:
        return list(mels)
    lengths = [int(n) for n in (lengths.tolist() if isinstance(lengths, torch.Tensor) else lengths)]
    if len(lengths) != len(mels):
        raise UserInputError(f"{len(lengths)} lengths for {len(mels)} mels")
    out = []
    for i, (mel, n) in enumerate(zip(mels, lengths)):
        frames = torch.as_tensor(mel).shape[-1]
        if not 1 <= n <= frames:
            raise UserInputError(f"mel #{i}: length {n} is outside 1..{frames} (its padded frame count)")
        out.append(torch.as_tensor(mel)[..., :n])
    return out


def _hub_download(repo_id: str) -> Path:
    """A Hub repository's files (only on an explicit from_pretrained of an id that is not a local path)."""
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise UserInputError(f"{repo_id}: no such folder, and not a Hub repository id (user/name)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UserInputError(f"{repo_id} is not a local folder; loading from the Hugging Face Hub needs "
                             "huggingface_hub: pip install wavegrad[hub]") from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=["model.safetensors", "config.json"]))
    except Exception as e:  # noqa: BLE001 - network, authentication, missing repository: one line each
        raise UserInputError(f"cannot fetch {repo_id} from the Hugging Face Hub ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None


def _check_positive_int(name: str, value, allow_none: bool = False, minimum: int = 1) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise UserInputError(f"{name} must be an integer >= {minimum}{' or None' if allow_none else ''}, got {value!r}")


class Vocoder:
    """A vocoder network (WaveGrad or DiffWave, EMA weights) with its mel front end, noise schedules and prior."""

    def __init__(self, model: WaveGrad, mel_config: MelConfig, train_schedule: NoiseSchedule,
                 schedules: dict[str, NoiseSchedule] | None = None, device: str | torch.device = "cpu",
                 precision: str = "fp32", schedule_samplers: dict[str, str] | None = None,
                 prior: PriorConfig | None = None, prior_stats: dict | None = None,
                 consistency: Consistency | None = None, schedule_consistency: dict[str, Consistency] | None = None):
        self.precision = check_precision(precision)    # "bf16": network calls under bf16 autocast
        self.consistency = consistency or Consistency()     # the default of calls that name none (checkpoint's)
        self.device = torch.device(device)
        if self.precision == "bf16" and self.device.type == "cpu" and not cpu_has_fast_bf16():
            warnings.warn("bf16 was asked for on a CPU without hardware bf16: it will be much slower than "
                          "fp32 here (use precision='fp32')", stacklevel=2)
        self.model = model.to(self.device).eval()
        self.mel_config = mel_config
        self.train_schedule = train_schedule
        self.schedules = dict(schedules or {})
        self.schedule_samplers = dict(schedule_samplers or {})   # stored schedule -> the sampler it was searched for
        self.schedule_consistency = dict(schedule_consistency or {})   # ... and the consistency, if it was
        self.featurizer = MelFeaturizer(mel_config).to(self.device)
        self.prior_config = prior or PriorConfig()                 # white for checkpoints from before priors
        self.prior_stats = dict(prior_stats or {})

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True,
                        precision: str = "fp32") -> "Vocoder":
        """The vocoder of a checkpoint file, or of a run folder's newest checkpoint."""
        check_precision(precision)
        if is_pretrained_folder(path):
            return cls.from_pretrained(path, device, precision)
        path = find_checkpoint(path)
        ckpt = load_family_checkpoint(path, "vocoder", "a vocoder")
        with rebuilding_from(path, "vocoder", "re-export it with this wavegrad"):
            weights = ckpt["ema"]["shadow"] if use_ema else ckpt["model"]
        return cls._from_parts(path, ckpt, weights, device, precision)

    # -- exported weights (safetensors + config.json) ----------------------------------------------------------
    def save_pretrained(self, folder: str | Path) -> Path:
        """``folder/model.safetensors`` (the weights this Vocoder runs) and ``folder/config.json`` (architecture, model
        and mel configs, training and stored schedules, prior): no pickle, loadable by :meth:`from_pretrained`."""
        return save_pretrained_folder(folder, self.model.state_dict(), self._export_config())

    def _export_config(self) -> dict:
        return {"family": "vocoder", "architecture": vocoder_architecture(self.model),
                "model_config": self.model.cfg.to_dict(), "mel_config": self.mel_config.to_dict(),
                "schedule": self.train_schedule.to_dict(),
                "schedules": {k: self._schedule_entry(k) for k in self.schedules},
                "prior": {"config": to_dict(self.prior_config), "stats": dict(self.prior_stats)},
                "consistency": to_dict(self.consistency)}

    def _schedule_entry(self, name: str) -> dict:
        """A stored schedule as checkpoints and exports hold it: its betas, sampler and consistency (if any)."""
        entry = self.schedules[name].to_dict()
        if name in self.schedule_samplers:
            entry["sampler"] = self.schedule_samplers[name]
        if name in self.schedule_consistency:
            entry["consistency"] = to_dict(self.schedule_consistency[name])
        return entry

    @classmethod
    def from_pretrained(cls, source: str | Path, device: str | torch.device = "cpu",
                        precision: str = "fp32") -> "Vocoder":
        """The vocoder of an exported folder (``wavegrad export``, :meth:`save_pretrained`), or of a Hugging Face Hub
        repository id ("user/name"; needs huggingface_hub: ``pip install wavegrad[hub]``, and the network)."""
        folder = Path(source)
        if not folder.exists():
            folder = _hub_download(str(source))
        weights, config = load_pretrained_folder(folder)
        return cls._from_parts(folder, config, weights, device, precision)

    @classmethod
    def _from_parts(cls, path, ckpt: dict, weights: dict, device, precision: str) -> "Vocoder":
        """Rebuild from a checkpoint or export's entries (configs, schedules, prior) and weights."""
        if ckpt.get("family", "vocoder") != "vocoder":
            raise UserInputError(f"{path}: this is a {ckpt.get('family')!r} model, not a vocoder")
        with rebuilding_from(path, "vocoder", "re-export it with this wavegrad"):
            arch = ckpt.get("architecture", "wavegrad")               # checkpoints from before DiffWave: WaveGrad
            if arch not in VOCODERS:
                raise UserInputError(f"unknown vocoder architecture {arch!r} (this wavegrad knows {', '.join(VOCODERS)})")
            network, config = VOCODERS[arch]
            model = network(config.from_dict(ckpt["model_config"]))
            model.load_state_dict(weights)
            stored = ckpt.get("schedules", {})
            schedules = {k: NoiseSchedule.from_dict({"betas": v["betas"]}) for k, v in stored.items()}
            samplers = {k: v["sampler"] for k, v in stored.items() if "sampler" in v}
            stored_consistency = {k: from_dict(Consistency, v["consistency"]) for k, v in stored.items()
                                  if "consistency" in v}
            mel_config, train_schedule = MelConfig.from_dict(ckpt["mel_config"]), NoiseSchedule.from_dict(ckpt["schedule"])
            prior = ckpt.get("prior") or {}
            prior_config = from_dict(PriorConfig, prior.get("config", {}))
            consistency = from_dict(Consistency, ckpt.get("consistency") or {})   # none before it existed
        return cls(model, mel_config, train_schedule, schedules, device, precision=precision,
                   schedule_samplers=samplers, prior=prior_config, prior_stats=prior.get("stats", {}),
                   consistency=consistency, schedule_consistency=stored_consistency)

    def add_schedule(self, path: str | Path, name: str, schedule: NoiseSchedule, sampler: str | None = None,
                     consistency: Consistency | None = None) -> None:
        """Store ``schedule`` under ``name`` (with the sampler and consistency it is meant for) in the checkpoint at
        ``path`` (atomic: on any failure the old file stays intact) and in this Vocoder."""
        ckpt = load_checkpoint(path)
        self.schedules[name] = schedule
        self.schedule_samplers.pop(name, None)
        self.schedule_consistency.pop(name, None)
        if sampler:
            self.schedule_samplers[name] = sampler
        if consistency is not None:
            self.schedule_consistency[name] = consistency
        ckpt.setdefault("schedules", {})[name] = self._schedule_entry(name)
        ckpt.pop("format"), ckpt.pop("version")
        save_checkpoint(path, ckpt)

    # -- what to run ------------------------------------------------------------------------------------------
    def resolve(self, steps: int | None = None, schedule: str | NoiseSchedule | None = None,
                sampler: str | None = None, nfe: int | None = None, eta: float | None = None,
                start_level: float | None = None, **options) -> tuple[NoiseSchedule, str, dict]:
        """(schedule, sampler, options) for a call (:func:`wavegrad.diffusion.plan_sampling` over this
        checkpoint's training schedule and stored schedules), every argument checked with a one-line error."""
        return plan_sampling(self.train_schedule, schedule, steps, sampler=sampler, nfe=nfe, eta=eta,
                             stored=self.schedules, stored_samplers=self.schedule_samplers, start_level=start_level,
                             **options)

    def resolve_schedule(self, steps: int | None = None, schedule: str | NoiseSchedule | None = None) -> NoiseSchedule:
        """The schedule :meth:`resolve` picks (``steps`` of the training schedule respaced, or a stored one)."""
        return self.resolve(steps, schedule)[0]

    # -- inputs -------------------------------------------------------------------------------------------------
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
        check_values(mel, self.mel_config, "the mel")
        return mel.to(self.device, torch.float32)

    @property
    def hop_length(self) -> int:
        return self.model.cfg.hop_length

    @functools.cached_property
    def silence_level(self) -> float:
        """The checkpoint convention's log-mel of digital silence, averaged over the bands (``ln(1e-5)`` for
        HiFi-GAN's, -4 for Coqui's; ESPnet's magnitude floor makes it band-dependent): the value clips, windows
        and batches are padded with. Measured by the featurizer itself, so every convention gets its own."""
        silent = torch.zeros(4 * self.hop_length, device=self.featurizer.mel_basis.device)
        return float(self.featurizer(silent).mean())

    def prior(self, mels: Sequence[torch.Tensor]) -> Prior:
        """The checkpoint's prior bound to clips ``mels`` ([n_mels, frames_i], padded with silence to the longest)."""
        frames = max(m.shape[-1] for m in mels)
        batch = torch.full((len(mels), self.mel_config.n_mels, frames), self.silence_level, device=self.device)
        for i, m in enumerate(mels):
            batch[i, :, :m.shape[-1]] = m
        return build_prior(self.prior_config, self.prior_stats, batch, self.mel_config,
                           [m.shape[-1] * self.hop_length for m in mels])

    # -- vocoding -----------------------------------------------------------------------------------------------
    def _sample(self, mels: list[torch.Tensor], plan, noise, *, chunk_frames, overlap_frames, batch_size, progress,
                callback=None, consistency: Consistency | None = None) -> list[torch.Tensor]:
        """The one path of every call: the windowed network as a denoiser (made mel-consistent if asked), then
        ``sample``; trimmed clips."""
        sched, name, options = plan
        denoise = WindowedDenoiser(self.model, mels, chunk_frames=chunk_frames, overlap_frames=overlap_frames,
                                   batch_size=batch_size, pad_value=self.silence_level, precision=self.precision)
        lengths, prior = denoise.lengths, self.prior(mels)
        shape = (len(mels), max(lengths))
        x_T = None
        if consistency is not None and consistency.active:
            denoise = self._consistent(denoise, mels, lengths, consistency, sched)
            if consistency.start_level is not None:
                x_T = self._shallow_start(denoise, shape, sched, prior, noise)
        x = sample(denoise, shape, sched, sampler=name, noise=noise, prior=prior, device=self.device, x_T=x_T,
                   dtype=torch.float32, clip_x0=CLIP, progress=progress, callback=callback, **options)
        return [x[i, :n] for i, n in enumerate(lengths)]

    def consistency_for(self, value: str | Consistency | None, schedule=None) -> Consistency:
        """The consistency a call uses, checked against the mel convention (mel-consistent sampling needs a
        filterbank with no empty bands). When it names none: the one stored with a stored ``schedule`` (by
        search-schedule), else the checkpoint's default."""
        if value is None:
            stored = self.schedule_consistency.get(schedule) if isinstance(schedule, str) else None
            consistency = stored or self.consistency
        else:
            consistency = Consistency.of(value)
        why = why_no_pseudo_inverse(self.mel_config) if consistency.active else None
        if why is not None:
            raise UserInputError(f"mel-consistent sampling ({consistency.label()}) needs the pseudo-inverse of this "
                                 f"checkpoint's filterbank: {why}")
        return consistency

    def _consistent(self, denoise, mels, lengths, consistency: Consistency, sched: NoiseSchedule):
        """``denoise`` with its x0 estimates projected onto the mels' magnitudes; gla++ replaces them by the
        Griffin-Lim reconstruction at the schedule's ``gl_steps`` noisiest levels."""
        levels = sched.noise_levels.flip(0).tolist()                         # noisiest first
        gl_below = levels[min(consistency.gl_steps, len(levels)) - 1] if consistency.gl_steps > 0 else None
        return MelConsistentDenoiser(denoise, mels, lengths, self.mel_config, consistency, gl_below=gl_below,
                                     device=self.device, reconstructions=None)

    def _shallow_start(self, denoise: MelConsistentDenoiser, shape, sched: NoiseSchedule, prior: Prior, noise):
        """The start at the schedule's noisiest level a0: a0·GL(mel) + sqrt(1 - a0²)·(prior noise), per clip."""
        from .audio.consistency import reconstruct
        recon = denoise.reconstructions or reconstruct(denoise.projector, denoise.targets, denoise.lengths,
                                                        denoise.opts)
        denoise.reconstructions = recon
        a0 = float(sched.noise_levels[-1])
        x = torch.zeros(shape, device=self.device)
        for i, r in enumerate(recon):
            x[i, :r.shape[-1]] = r.float()
        return a0 * x + math.sqrt(1.0 - a0 * a0) * prior.color(noise(torch.Size(shape))).to(torch.float32)

    @torch.inference_mode()
    def __call__(self, mel: torch.Tensor, steps: int | None = None, schedule: str | NoiseSchedule | None = None,
                 eta: float | None = None, generator: torch.Generator | None = None, progress: bool = False, *,
                 sampler: str | None = None, nfe: int | None = None,
                 chunk_frames: int | None = DEFAULT_CHUNK_FRAMES, overlap_frames: int | None = None,
                 batch_size: int | None = None, callback: Callable[[Step], None] | None = None,
                 consistency: str | Consistency | None = None, **options) -> torch.Tensor:
        """Log-mel [n_mels, frames] -> wav [frames * hop]; [B, n_mels, frames] -> [B, frames * hop].

        ``sampler`` (default DDPM; ``eta`` alone picks DDIM(eta)), ``steps`` / ``nfe`` / ``schedule`` as in
        :meth:`resolve`; ``options`` are the sampler's own (``s_churn``, ``snr``, ...). Inputs longer than
        ``chunk_frames + overlap_frames`` are vocoded in overlapping windows (``chunk_frames=None`` turns that
        off), ``batch_size`` windows per network call (default: B). The noise is drawn from ``generator`` as one
        ``[B, frames * hop]`` tensor per draw, as :func:`vocode` does; use :meth:`vocode_batch` for per-clip seeds.
        """
        squeeze = torch.as_tensor(mel).ndim == 2
        mel = self.check_mel(mel)
        consistency = self.consistency_for(consistency, schedule)
        plan = self.resolve(steps, schedule, sampler, nfe, eta, start_level=consistency.start_level, **options)
        _check_positive_int("chunk_frames", chunk_frames, allow_none=True)
        overlap_frames = self._overlap(overlap_frames)
        _check_positive_int("batch_size", batch_size, allow_none=True)
        wavs = self._sample(list(mel.unbind(0)), plan, lambda size: randn(size, generator, self.device, torch.float32),
                            chunk_frames=chunk_frames, overlap_frames=overlap_frames,
                            batch_size=batch_size or mel.shape[0], progress=progress, callback=callback,
                            consistency=consistency)
        wav = torch.stack(wavs)
        return wav[0] if squeeze else wav

    @torch.inference_mode()
    def vocode_batch(self, mels: Sequence[torch.Tensor] | torch.Tensor, steps: int | None = None,
                     schedule: str | NoiseSchedule | None = None, eta: float | None = None, *,
                     sampler: str | None = None, nfe: int | None = None, seed: int | None = None,
                     generator: torch.Generator | None = None, batch_size: int | None = None,
                     chunk_frames: int | None = DEFAULT_CHUNK_FRAMES, overlap_frames: int | None = None,
                     progress: bool = False, callback: Callable[[Step], None] | None = None,
                     lengths: Sequence[int] | torch.Tensor | None = None,
                     consistency: str | Consistency | None = None, **options) -> list[torch.Tensor]:
        """Log-mels ``[n_mels, frames_i]`` of any lengths -> waveforms ``[frames_i * hop]`` (on ``self.device``).

        ``mels`` may also be a padded batch ``[B, n_mels, F]`` with ``lengths`` its true frame counts (SpeechBrain's
        ``decode_batch(mels, mel_lens)``): each mel is cut to its length before anything runs, so the padding never
        reaches the audio, and each waveform is ``lengths[i] * hop`` samples.

        Clip ``i`` draws its noise from a CPU generator seeded with ``seed + i`` (``seed`` None: one base
        seed drawn from ``generator``, or from torch's global RNG without one); see "Determinism" in
        the module docstring for what that makes independent of ``batch_size`` and of the other clips.
        Clips are grouped (longest first) so that one group holds about ``batch_size`` windows, and the
        group's windows run ``batch_size`` at a time; long clips are windowed as in :meth:`__call__`.
        ``batch_size=None``: 1 on CPU (one window keeps the cores busy; four per call measured no faster
        and took 1.8x the memory), ``DEFAULT_BATCH_SIZE`` on other devices. Sampler, steps, nfe, schedule
        and options as in :meth:`__call__`.
        """
        checked = self._check_mels(_unpad(mels, lengths))
        consistency = self.consistency_for(consistency, schedule)
        plan = self.resolve(steps, schedule, sampler, nfe, eta, start_level=consistency.start_level, **options)
        _check_positive_int("batch_size", batch_size, allow_none=True)
        if batch_size is None:
            batch_size = 1 if self.device.type == "cpu" else DEFAULT_BATCH_SIZE
        _check_positive_int("chunk_frames", chunk_frames, allow_none=True)
        overlap_frames = self._overlap(overlap_frames)
        if seed is None:
            seed = int(torch.randint(0, 2**62, (), generator=generator,
                                     device=generator.device if generator is not None else "cpu"))
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UserInputError(f"seed must be an integer, got {seed!r}")
        results: list[torch.Tensor | None] = [None] * len(checked)
        for group in self._groups(checked, batch_size, chunk_frames, overlap_frames):
            wavs = self._sample([checked[i] for i in group], plan, self._clip_noise(group, checked, seed),
                                chunk_frames=chunk_frames, overlap_frames=overlap_frames, batch_size=batch_size,
                                progress=progress, callback=callback, consistency=consistency)
            for i, wav in zip(group, wavs):
                results[i] = wav
        return results

    def _overlap(self, overlap_frames: int | None) -> int:
        """``overlap_frames``, checked; None: four times the network's per-step context (``CONTEXT_FRAMES``: its
        receptive half-width in frames), at least ``DEFAULT_OVERLAP_FRAMES``, so each window keeps a quarter of
        the overlap as context beyond the crossfade (see :mod:`wavegrad.long_form`)."""
        if overlap_frames is None:
            return max(DEFAULT_OVERLAP_FRAMES, 4 * self.model.CONTEXT_FRAMES)
        _check_positive_int("overlap_frames", overlap_frames, minimum=0)
        return overlap_frames

    @torch.inference_mode()
    def infill(self, wav: torch.Tensor, spans: Sequence[tuple[float, float]], steps: int | None = None,
               schedule: str | NoiseSchedule | None = None, eta: float | None = None, *,
               mel: torch.Tensor | None = None, sampler: str | None = None, nfe: int | None = None, seed: int = 0,
               jump_length: int = 1, jump_n_sample: int = 1, chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
               overlap_frames: int | None = None, batch_size: int | None = None, progress: bool = False,
               callback: Callable[[Step], None] | None = None, consistency: str | Consistency | None = None,
               **options) -> torch.Tensor:
        """``wav [T]`` with the time ``spans`` [(start, end) in seconds] regenerated and every other sample kept.

        The spans are sampled conditioned on ``mel`` (default: the recording's own log-mel; e.g. a TTS mel of an
        edited sentence, ``[n_mels, T // hop]``) while the rest of the clip is held to the recording at every
        step (:func:`wavegrad.diffusion.inpaint`, the replacement method with optional RePaint jumps), so the
        spans join their surroundings without seams. Long recordings go through the windowed network as every
        call. Samples past the last whole frame are returned unchanged too.
        """
        wav = self._check_wav(wav)
        hop = self.hop_length
        n = wav.shape[-1] // hop * hop
        mask = self.span_mask(spans, wav.shape[-1])                              # True = keep
        if mask.all():
            raise UserInputError("the spans cover no samples: nothing to infill")
        if not mask[n:].all():
            raise UserInputError(f"a span reaches past the last whole frame ({n / self.mel_config.sample_rate:.3f} s); "
                                 "end it earlier")
        mel = self.featurizer.paired(wav[:n])[0] if mel is None else self.check_mel(mel)[0]
        if mel.shape[-1] != n // hop:
            raise UserInputError(f"the mel has {mel.shape[-1]} frames but the recording has {n // hop} "
                                 f"({n} samples / hop {hop}); give the mel of this recording's length")
        stored = consistency is None
        consistency = self.consistency_for(consistency, schedule)
        if consistency.start_level is not None and stored:     # the checkpoint's shallow start is for whole clips
            consistency = dataclasses.replace(consistency, start_level=None)
        if consistency.start_level is not None:
            raise UserInputError("a shallow start (start_level) does not apply to infilling: the spans start from "
                                 "noise beside the kept recording; drop it")
        sched, name, options = self.resolve(steps, schedule, sampler, nfe, eta, **options)
        denoise = WindowedDenoiser(self.model, [mel], chunk_frames=chunk_frames, overlap_frames=self._overlap(overlap_frames),
                                   batch_size=batch_size or 1, pad_value=self.silence_level, precision=self.precision)
        if consistency.active:
            denoise = self._consistent(denoise, [mel], [n], consistency, sched)
        g = torch.Generator().manual_seed(seed)
        out = inpaint(denoise, wav[None, :n], mask[None, :n], sched, sampler=name, jump_length=jump_length,
                      jump_n_sample=jump_n_sample, prior=self.prior([mel]), clip_x0=CLIP, progress=progress,
                      callback=callback, noise=lambda size: randn(size, g, self.device, torch.float32), **options)
        return torch.cat([out[0], wav[n:]])

    def span_mask(self, spans: Sequence[tuple[float, float]], length: int) -> torch.Tensor:
        """A bool mask ``[length]``, False inside the time ``spans`` (seconds), checked: in range, non-empty,
        not overlapping."""
        sr = self.mel_config.sample_rate
        if not spans:
            raise UserInputError("give at least one span START:END (seconds) to infill")
        mask = torch.ones(length, dtype=torch.bool, device=self.device)
        bounds = []
        for start, end in spans:
            a, b = round(start * sr), round(end * sr)
            if not (math.isfinite(start) and math.isfinite(end)) or start < 0 or end > length / sr + 1e-9:
                raise UserInputError(f"span {start:g}:{end:g} s lies outside the recording (0:{length / sr:.3f} s)")
            if b <= a:
                raise UserInputError(f"span {start:g}:{end:g} s is empty; give START < END")
            bounds.append((a, b, start, end))
        for (a1, b1, s1, e1), (a2, b2, s2, e2) in zip(sorted(bounds), sorted(bounds)[1:]):
            if a2 < b1:
                raise UserInputError(f"spans {s1:g}:{e1:g} and {s2:g}:{e2:g} overlap; merge them")
        for a, b, _, _ in bounds:
            mask[a:b] = False
        return mask

    def _check_wav(self, wav) -> torch.Tensor:
        wav = torch.as_tensor(wav)
        if wav.ndim != 1 or not wav.is_floating_point():
            raise UserInputError(f"the recording must be a float waveform [T], got {wav.dtype} {tuple(wav.shape)}")
        if wav.shape[0] < max(self.hop_length, self.mel_config.min_length):
            raise UserInputError(f"the recording has {wav.shape[0]} samples: too short to infill")
        if not torch.isfinite(wav).all():
            raise UserInputError("the recording contains NaN or inf samples")
        return wav.to(self.device, torch.float32)

    def _check_mels(self, mels: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        checked = []
        for i, mel in enumerate(mels):
            if torch.as_tensor(mel).ndim != 2:
                raise UserInputError(f"mel #{i}: vocode_batch takes a list of [n_mels, frames] log-mels, got shape "
                                     f"{tuple(torch.as_tensor(mel).shape)}")
            try:
                checked.append(self.check_mel(mel)[0])
            except UserInputError as e:
                raise UserInputError(f"mel #{i}: {e}") from None
        return checked

    @staticmethod
    def _groups(mels: list[torch.Tensor], batch_size: int, chunk_frames, overlap_frames) -> list[list[int]]:
        """Clips grouped longest first so that a group holds about ``batch_size`` windows."""
        from .long_form import plan_windows
        order = sorted(range(len(mels)), key=lambda i: -mels[i].shape[-1])
        groups, current, budget = [], [], 0
        for i in order:
            n = len(plan_windows(mels[i].shape[-1], chunk_frames, overlap_frames))
            if current and budget + n > batch_size:
                groups.append(current)
                current, budget = [], 0
            current.append(i)
            budget += n
        return groups + ([current] if current else [])

    def _clip_noise(self, group: list[int], mels: list[torch.Tensor], seed: int):
        """The noise source of a group: clip ``i`` draws from its own generator (seed + i), zeros past its end."""
        gens = [torch.Generator(device="cpu").manual_seed(seed + i) for i in group]
        lengths = [mels[i].shape[-1] * self.hop_length for i in group]

        def noise(size: torch.Size) -> torch.Tensor:
            out = torch.zeros(size, device=self.device)
            for r, (g, n) in enumerate(zip(gens, lengths)):
                out[r, :n] = randn((n,), g, self.device, torch.float32)
            return out
        return noise
