"""The inference API: a trained checkpoint turns log-mels into waveforms.

    voc = Vocoder.from_checkpoint("run/checkpoints/step-00010000.pt", device="cpu")
    wav = voc(mel, steps=6)                  # or schedule="<name stored in the checkpoint>", eta=0.0
    wav = voc(mel, sampler="heun", nfe=11, schedule="karras")  # any sampler, any schedule, cost in NFE
    wav = voc(mel, steps=6, consistency="gla")                  # mel-consistent sampling (GLA-Grad)
    wavs = voc.vocode_batch([mel_a, mel_b], steps=50, seed=0)   # clips of different lengths, per-clip seeds

What to run is one :class:`VocodingPlan` (a :class:`wavegrad.diffusion.SamplingPlan` and a
:class:`~wavegrad.audio.consistency.Consistency`), built by :meth:`Vocoder.plan` from the keywords every call
takes (or passed whole as ``plan=``). Every call then takes one path, :meth:`Vocoder._sample`: the network bound to
the mels by :class:`wavegrad.long_form.WindowedDenoiser` (long inputs in overlapping windows), made mel-consistent
if asked, sampled by :func:`wavegrad.diffusion.sample`; there is no sampling loop here. What a checkpoint holds is
:class:`wavegrad.bundle.VocoderBundle`; grouping clips and their per-clip noise live in :mod:`wavegrad.long_form`.
``__call__`` draws its noise from one ``generator`` as one ``[B, frames * hop]`` tensor per draw (as :func:`vocode`);
``vocode_batch`` gives clip ``i`` the seed ``seed + i``.
"""
from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path
from typing import Callable, Sequence

import torch

from . import vocoder_inputs as inputs
from .audio import MelFeaturizer
from .audio.consistency import Consistency, MelConsistentDenoiser, reconstruct
from .audio.priors import build_prior
from .bundle import (StoredSchedule, VocoderBundle, VocodingPlan, load_vocoder,  # noqa: F401 (the API's)
                     save_vocoder_checkpoint)
from .diffusion import NoiseSchedule, Prior, Step, inpaint, sample
from .diffusion._util import randn
from .diffusion.preconditioning import Parametrization
from .errors import UserInputError
from .long_form import WindowedDenoiser, clip_noise, group_clips, window_options
from .models.precision import Compiled, check_precision, cpu_has_fast_bf16

# ≈ 3 s at hop 256 / 22.05 kHz. Measured for base on 2 CPU cores (15 s of audio): 256 frames ran at 0.58 s/it per
# audio-s and 1.0 GB peak RSS, 512 at 0.76 s and 1.4 GB (activations of a 6 s window fall out of cache), 128 at
# 0.56 s but 25% of its work is overlap.
DEFAULT_CHUNK_FRAMES = 256
DEFAULT_OVERLAP_FRAMES = 32    # ≈ 0.37 s: 8 frames of context each side + a 16-frame crossfade
DEFAULT_BATCH_SIZE = 4         # windows per network call in vocode_batch off the CPU
CLIP = 1.0                     # x0 estimates are clamped to the audio range [-1, 1]


@torch.inference_mode()
def vocode(model, mel: torch.Tensor, schedule: NoiseSchedule, *, sampler: str | None = None,
           eta: float | None = None, generator: torch.Generator | None = None, clip: float | None = CLIP,
           progress: bool = False, precision: str = "fp32", callback: Callable[[Step], None] | None = None,
           prior: Prior | None = None, parametrization: Parametrization | None = None, **options) -> torch.Tensor:
    """``mel [B, n_mels, frames] -> wav [B, frames * hop]``: ``sample`` with the network bound to the mel (encoded
    once per utterance); ``clip`` bounds every x0 estimate; ``precision="bf16"`` runs the network under bf16
    autocast (the sampler stays fp32); ``prior``: the noise prior bound to ``mel`` (white if None);
    ``parametrization``: what the network's output means (eps if None)."""
    denoise = (parametrization or Parametrization()).wrap(WindowedDenoiser(model, list(mel), precision=precision))
    shape = (mel.shape[0], mel.shape[-1] * model.cfg.hop_length)
    return sample(denoise, shape, schedule, sampler=sampler, eta=eta, generator=generator, device=mel.device,
                  dtype=mel.dtype, clip_x0=clip, progress=progress, callback=callback, prior=prior, **options)


class Vocoder:
    """A vocoder network (WaveGrad or DiffWave, EMA weights) with its checkpoint's bundle: mel front end, noise
    schedules, prior and default consistency."""

    def __init__(self, model, mel_config=None, train_schedule: NoiseSchedule | None = None,
                 schedules: dict[str, NoiseSchedule] | None = None, device: str | torch.device = "cpu",
                 precision: str = "auto", schedule_samplers: dict[str, str] | None = None, prior=None,
                 prior_stats: dict | None = None, consistency: Consistency | None = None, *,
                 bundle: VocoderBundle | None = None, compile: bool = False):
        self.device = torch.device(device)
        self.precision = check_precision(precision, self.device)    # "bf16": network calls under bf16 autocast
        if self.precision == "bf16" and self.device.type == "cpu" and not cpu_has_fast_bf16():
            warnings.warn("bf16 was asked for on a CPU without hardware bf16: it will be much slower than "
                          "fp32 here (use precision='fp32')", stacklevel=2)
        stored = {k: StoredSchedule(v, (schedule_samplers or {}).get(k)) for k, v in (schedules or {}).items()}
        self.bundle = bundle or VocoderBundle.of(model, mel_config, train_schedule, schedules=stored,
                                                 **{k: v for k, v in (("prior", prior), ("prior_stats", prior_stats),
                                                                      ("consistency", consistency)) if v is not None})
        self.model = model.to(self.device).eval()
        # compile: the network's call under torch.compile, fed windows of one fixed shape (long_form.py)
        self.network = Compiled(self.model.denoise) if compile else None
        self.featurizer = MelFeaturizer(self.mel_config).to(self.device)

    mel_config = property(lambda self: self.bundle.mel_config)
    train_schedule = property(lambda self: self.bundle.schedule)
    schedules = property(lambda self: {k: v.schedule for k, v in self.bundle.schedules.items()})
    schedule_samplers = property(lambda self: {k: v.sampler for k, v in self.bundle.schedules.items() if v.sampler})
    prior_config = property(lambda self: self.bundle.prior)
    prior_stats = property(lambda self: self.bundle.prior_stats)
    consistency = property(lambda self: self.bundle.consistency)
    hop_length = property(lambda self: self.model.cfg.hop_length)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True,
                        precision: str = "auto", compile: bool = False) -> "Vocoder":
        """The vocoder of a checkpoint file, a run folder's newest checkpoint, or an export folder; ``compile``: the
        network under ``torch.compile`` (see :meth:`warm_up`)."""
        check_precision(precision)
        bundle, weights, source = load_vocoder(path, use_ema)
        from .checkpoint import rebuilding_from
        with rebuilding_from(source, "vocoder", "re-export it with this wavegrad"):
            model = bundle.network(weights)
        return cls(model, device=device, precision=precision, bundle=bundle, compile=compile)

    @classmethod
    def from_pretrained(cls, source: str | Path, device: str | torch.device = "cpu",
                        precision: str = "auto", compile: bool = False) -> "Vocoder":
        """The vocoder of an exported folder (``wavegrad export``, :meth:`save_pretrained`), or of a Hugging Face Hub
        repository id ("user/name"; needs huggingface_hub: ``pip install wavegrad[hub]``, and the network)."""
        from .checkpoint import hub_download
        folder = Path(source)
        return cls.from_checkpoint(folder if folder.exists() else hub_download(str(source)), device,
                                   precision=precision, compile=compile)

    def warm_up(self, batch_size: int = 1, chunk_frames: int = DEFAULT_CHUNK_FRAMES,
                overlap_frames: int | None = None) -> float:
        """Compile the network for the window shape of calls with these options (one short vocoding of silence);
        the seconds compiling took (0 when not compiling), so that a timing can leave them out."""
        if self.network is None:
            return 0.0
        before = self.network.compile_seconds
        self.vocode_batch([torch.full((self.mel_config.n_mels, 1), self.silence_level)], steps=1, seed=0,
                          batch_size=batch_size, chunk_frames=chunk_frames, overlap_frames=overlap_frames,
                          consistency="none")
        return self.network.compile_seconds - before

    def save_pretrained(self, folder: str | Path) -> Path:
        """``folder/model.safetensors`` (the weights this Vocoder runs) and ``folder/config.json`` (its bundle)."""
        return self.bundle.export(folder, self.model.state_dict())

    def add_schedule(self, path: str | Path, name: str, schedule: NoiseSchedule, sampler: str | None = None,
                     consistency: Consistency | None = None) -> None:
        """Store ``schedule`` under ``name`` (with the sampler and consistency it is meant for) here and in the
        checkpoint at ``path`` (atomically)."""
        self.bundle.store_schedule(path, name, StoredSchedule(schedule, sampler, consistency))

    # -- what to run ------------------------------------------------------------------------------------------------
    def plan(self, steps: int | None = None, schedule: str | NoiseSchedule | None = None, **request) -> VocodingPlan:
        """The plan of a call (:meth:`VocoderBundle.plan`: sampler, nfe, eta, consistency, the sampler's options),
        every argument checked with a one-line error."""
        return self.bundle.plan(steps, schedule, **request)

    # -- inputs ---------------------------------------------------------------------------------------------------------
    def check_mel(self, mel: torch.Tensor) -> torch.Tensor:
        """Validate and batch a log-mel: [n_mels, frames] or [B, n_mels, frames] -> [B, n_mels, frames]."""
        return inputs.check_mel(mel, self.mel_config).to(self.device, torch.float32)

    @functools.cached_property
    def silence_level(self) -> float:
        """The convention's log-mel of digital silence, averaged over the bands, measured by its own featurizer
        (``ln(1e-5)`` for HiFi-GAN's, -4 for Coqui's): what clips, windows and batches are padded with."""
        silent = torch.zeros(4 * self.hop_length, device=self.featurizer.mel_basis.device)
        return float(self.featurizer(silent).mean())

    def prior(self, mels: Sequence[torch.Tensor]) -> Prior:
        """The checkpoint's prior bound to clips ``mels`` ([n_mels, frames_i], padded with silence to the longest)."""
        batch = torch.full((len(mels), self.mel_config.n_mels, max(m.shape[-1] for m in mels)), self.silence_level,
                           device=self.device)
        for i, m in enumerate(mels):
            batch[i, :, :m.shape[-1]] = m
        return build_prior(self.prior_config, self.bundle.prior_stats, batch, self.mel_config,
                           [m.shape[-1] * self.hop_length for m in mels])

    # -- vocoding -----------------------------------------------------------------------------------------------------
    def _denoiser(self, mels, plan: VocodingPlan, windows: dict):
        """The network bound to ``mels`` in windows (as an eps-denoiser), made mel-consistent as ``plan`` says."""
        windowed = WindowedDenoiser(self.model, mels, pad_value=self.silence_level, precision=self.precision,
                                    network=self.network, fixed=self.network is not None, **windows)
        denoise = self.bundle.eps_denoiser(windowed)
        if not plan.consistency.active:
            return denoise
        levels = plan.sampling.schedule.noise_levels.flip(0).tolist()                  # noisiest first
        k = plan.consistency.gl_steps
        return MelConsistentDenoiser(denoise, mels, windowed.lengths, self.mel_config, plan.consistency,
                                     gl_below=levels[min(k, len(levels)) - 1] if k > 0 else None, device=self.device)

    def _sample(self, mels: list[torch.Tensor], plan: VocodingPlan, noise, windows: dict, progress=False,
                callback=None) -> list[torch.Tensor]:
        """The one path of every call: the denoiser, the start (noise, or a shallow start from Griffin-Lim), then
        ``sample``; trimmed clips."""
        denoise = self._denoiser(mels, plan, windows)
        lengths, prior = [m.shape[-1] * self.hop_length for m in mels], self.prior(mels)
        shape = (len(mels), max(lengths))
        x_T = None
        if plan.consistency.start_level is not None:     # a0·GL(mel) + sqrt(1 - a0²)·(prior noise), a0 its first level
            recon = denoise.reconstructions or reconstruct(denoise.projector, denoise.targets, lengths, plan.consistency)
            denoise.reconstructions = recon
            a0, start = float(plan.sampling.schedule.noise_levels[-1]), torch.zeros(shape, device=self.device)
            for i, r in enumerate(recon):
                start[i, :r.shape[-1]] = r.float()
            x_T = a0 * start + math.sqrt(1.0 - a0 * a0) * prior.color(noise(torch.Size(shape))).to(torch.float32)
        x = sample(denoise, shape, plan.sampling, noise=noise, prior=prior, device=self.device, x_T=x_T,
                   dtype=torch.float32, clip_x0=CLIP, progress=progress, callback=callback)
        if plan.consistency.polish_iterations:
            return [denoise.polish(i, x[i, :n]) for i, n in enumerate(lengths)]
        return [x[i, :n] for i, n in enumerate(lengths)]

    @torch.inference_mode()
    def __call__(self, mel: torch.Tensor, steps: int | None = None, schedule: str | NoiseSchedule | None = None,
                 eta: float | None = None, generator: torch.Generator | None = None, progress: bool = False, *,
                 plan: VocodingPlan | None = None, chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
                 overlap_frames: int | None = None, batch_size: int | None = None,
                 callback: Callable[[Step], None] | None = None, **sampling) -> torch.Tensor:
        """Log-mel [n_mels, frames] -> wav [frames * hop]; [B, n_mels, frames] -> [B, frames * hop].

        What to run: ``plan``, or :meth:`plan`'s keywords (``steps``, ``schedule``, ``eta``, ``sampler``, ``nfe``,
        ``consistency`` and the sampler's own options; default DDPM, the checkpoint's consistency). Inputs longer
        than ``chunk_frames + overlap_frames`` are vocoded in overlapping windows (``chunk_frames=None``: off),
        ``batch_size`` windows per network call (default: B). The noise is drawn from ``generator`` as one
        ``[B, frames * hop]`` tensor per draw; use :meth:`vocode_batch` for per-clip seeds."""
        squeeze = torch.as_tensor(mel).ndim == 2
        mel = self.check_mel(mel)
        plan = plan or self.plan(steps, schedule, eta=eta, **sampling)
        windows = window_options(self.model, chunk_frames, overlap_frames, batch_size, DEFAULT_OVERLAP_FRAMES)
        windows["batch_size"] = windows["batch_size"] or mel.shape[0]
        wavs = self._sample(list(mel.unbind(0)), plan, lambda size: randn(size, generator, self.device, torch.float32),
                            windows, progress, callback)
        return wavs[0] if squeeze else torch.stack(wavs)

    @torch.inference_mode()
    def vocode_batch(self, mels: Sequence[torch.Tensor] | torch.Tensor, steps: int | None = None,
                     schedule: str | NoiseSchedule | None = None, eta: float | None = None, *,
                     plan: VocodingPlan | None = None, seed: int | None = None,
                     generator: torch.Generator | None = None, batch_size: int | None = None,
                     chunk_frames: int | None = DEFAULT_CHUNK_FRAMES, overlap_frames: int | None = None,
                     progress: bool = False, callback: Callable[[Step], None] | None = None,
                     lengths: Sequence[int] | torch.Tensor | None = None, **sampling) -> list[torch.Tensor]:
        """Log-mels ``[n_mels, frames_i]`` of any lengths -> waveforms ``[frames_i * hop]`` (on ``self.device``).

        ``mels`` may be a padded batch ``[B, n_mels, F]`` with ``lengths`` its true frame counts (SpeechBrain's
        ``decode_batch``): each mel is cut to its length first. Clip ``i`` draws its noise from a CPU generator
        seeded ``seed + i`` (None: a base seed drawn from ``generator``, or torch's global RNG), so its waveform
        does not depend on the other clips (:mod:`wavegrad.long_form`). Clips are grouped longest first into about
        ``batch_size`` windows (default 1 on CPU -- one window keeps the cores busy, four measured no faster at
        1.8x the memory -- and ``DEFAULT_BATCH_SIZE`` elsewhere). What to run: as :meth:`__call__`."""
        checked = [m.to(self.device, torch.float32) for m in inputs.check_mels(inputs.unpad(mels, lengths),
                                                                                self.mel_config)]
        plan = plan or self.plan(steps, schedule, eta=eta, **sampling)
        windows = window_options(self.model, chunk_frames, overlap_frames, batch_size, DEFAULT_OVERLAP_FRAMES)
        if windows["batch_size"] is None:
            windows["batch_size"] = 1 if self.device.type == "cpu" else DEFAULT_BATCH_SIZE
        if seed is None:
            seed = int(torch.randint(0, 2**62, (), generator=generator,
                                     device=generator.device if generator is not None else "cpu"))
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise UserInputError(f"seed must be an integer, got {seed!r}")
        results: list[torch.Tensor | None] = [None] * len(checked)
        frames = [m.shape[-1] for m in checked]
        for group in group_clips(frames, windows["batch_size"], windows["chunk_frames"], windows["overlap_frames"]):
            noise = clip_noise([seed + i for i in group], [frames[i] * self.hop_length for i in group], self.device)
            for i, wav in zip(group, self._sample([checked[i] for i in group], plan, noise, windows, progress,
                                                  callback)):
                results[i] = wav
        return results

    @torch.inference_mode()
    def infill(self, wav: torch.Tensor, spans: Sequence[tuple[float, float]], steps: int | None = None,
               schedule: str | NoiseSchedule | None = None, eta: float | None = None, *,
               plan: VocodingPlan | None = None, mel: torch.Tensor | None = None, seed: int = 0,
               jump_length: int = 1, jump_n_sample: int = 1, chunk_frames: int | None = DEFAULT_CHUNK_FRAMES,
               overlap_frames: int | None = None, batch_size: int | None = None, progress: bool = False,
               callback: Callable[[Step], None] | None = None, **sampling) -> torch.Tensor:
        """``wav [T]`` with the time ``spans`` [(start, end) in seconds] regenerated and every other sample kept.

        The spans are sampled conditioned on ``mel`` (default: the recording's own log-mel; e.g. a TTS mel of an
        edited sentence, ``[n_mels, T // hop]``) while the rest is held to the recording at every step
        (:func:`wavegrad.diffusion.inpaint`: the replacement method, RePaint's jumps optional), so the spans join
        their surroundings without seams; long recordings go through the windowed network. A stored shallow start
        and polish are dropped (they are for whole clips; named, they are refused). Samples past the last whole
        frame are returned unchanged too."""
        wav, hop = inputs.check_recording(wav, self.mel_config, self.hop_length).to(self.device), self.hop_length
        n = wav.shape[-1] // hop * hop
        mask = inputs.span_mask(spans, wav.shape[-1], self.mel_config.sample_rate, self.device)   # True = keep
        if mask.all() or not mask[n:].all():
            raise UserInputError("the spans cover no samples: nothing to infill" if mask.all() else
                                 f"a span reaches past the last whole frame ({n / self.mel_config.sample_rate:.3f} "
                                 "s); end it earlier")
        mel = self.featurizer.paired(wav[:n])[0] if mel is None else self.check_mel(mel)[0]
        if mel.shape[-1] != n // hop:
            raise UserInputError(f"the mel has {mel.shape[-1]} frames but the recording has {n // hop} "
                                 f"({n} samples / hop {hop}); give the mel of this recording's length")
        if sampling.get("consistency") is None:           # the checkpoint's shallow start and polish are for whole clips
            sampling = sampling | {"consistency": self.bundle.consistency_for(None, schedule).without_whole_clip()}
        plan = plan or self.plan(steps, schedule, eta=eta, **sampling)
        if plan.consistency.start_level is not None:
            raise UserInputError("a shallow start (start_level) does not apply to infilling: the spans start from "
                                 "noise beside the kept recording; drop it")
        if plan.consistency.polish_iterations:
            raise UserInputError("the polish (+glK, polish_iterations) does not apply to infilling: Griffin-Lim would "
                                 "change the kept recording too; drop it")
        windows = window_options(self.model, chunk_frames, overlap_frames, batch_size, DEFAULT_OVERLAP_FRAMES)
        windows["batch_size"] = windows["batch_size"] or 1
        g = torch.Generator().manual_seed(seed)
        out = inpaint(self._denoiser([mel], plan, windows), wav[None, :n], mask[None, :n], plan.sampling,
                      jump_length=jump_length, jump_n_sample=jump_n_sample, prior=self.prior([mel]), clip_x0=CLIP,
                      progress=progress, callback=callback,
                      noise=lambda size: randn(size, g, self.device, torch.float32))
        return torch.cat([out[0], wav[n:]])

    def span_mask(self, spans: Sequence[tuple[float, float]], length: int) -> torch.Tensor:
        """A bool mask ``[length]``, False inside the time ``spans`` (seconds), checked."""
        return inputs.span_mask(spans, length, self.mel_config.sample_rate, self.device)
