"""Speech enhancement on the same core: a checkpoint turns noisy speech into clean speech (CDiffuSE).

    enh = Enhancer.from_checkpoint("runs/enhance-quick")      # a checkpoint file, run folder or export folder
    clean = enh(noisy_wav)                                     # [T] float at the model's rate -> [T]
    clean = enh(noisy_wav, steps=50, sampler="ddim", seed=1)   # the training schedule respaced; deterministic

The network is DiffWave conditioned on the noisy recording's log-mel; the diffusion runs from the noisy recording
toward clean speech (:mod:`wavegrad.diffusion.conditional`: CDiffuSE's forward process, its reverse steps, its final
mix with the noisy input). Long recordings go through the same windowed denoiser as the vocoder
(:class:`wavegrad.long_form.WindowedDenoiser`), so memory stays flat in length. The input is scaled so that it peaks
at most at 0.95 (as in training) and scaled back afterwards.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from .audio import MelConfig, MelFeaturizer
from .checkpoint import load, rebuilding_from, save_checkpoint, save_pretrained_folder
from .diffusion import NoiseSchedule
from .diffusion.conditional import GAMMA, INFERENCE_BETAS, enhance
from .errors import UserInputError
from .long_form import WindowedDenoiser, window_options
from .models import DiffWave, DiffWaveConfig
from .models.precision import check_precision

FAMILY = "enhancer"
SAMPLERS = {"cdiffuse": 1.0, "ddim": 0.0}     # CDiffuSE's ancestral reverse steps (eta 1), or deterministic (eta 0)
PEAK = 0.95
DEFAULT_CHUNK_FRAMES = 256


@dataclass
class EnhancerBundle:
    """What an enhancer checkpoint holds besides its weights: network and mel configs, the training schedule, the
    default inference schedule (CDiffuSE's 6 betas) and the final mix with the noisy input."""

    model_config: DiffWaveConfig
    mel_config: MelConfig
    schedule: NoiseSchedule
    inference: NoiseSchedule = dataclasses.field(default_factory=lambda: NoiseSchedule.from_betas(INFERENCE_BETAS))
    gamma: float = GAMMA

    def to_dict(self) -> dict:
        return {"family": FAMILY, "architecture": "diffwave", "model_config": self.model_config.to_dict(),
                "mel_config": self.mel_config.to_dict(), "schedule": self.schedule.to_dict(),
                "inference_schedule": self.inference.to_dict(), "gamma": self.gamma}

    @classmethod
    def from_dict(cls, d: dict) -> "EnhancerBundle":
        if d.get("family") != FAMILY:
            raise UserInputError(f"this is a {d.get('family')!r} model, not a speech enhancer")
        return cls(DiffWaveConfig.from_dict(d["model_config"]), MelConfig.from_dict(d["mel_config"]),
                   NoiseSchedule.from_dict(d["schedule"]), NoiseSchedule.from_dict(d["inference_schedule"]),
                   float(d.get("gamma", GAMMA)))

    def save_checkpoint(self, path, weights: dict) -> Path:
        weights = {k: v.detach().cpu() for k, v in weights.items()}
        return save_checkpoint(path, self.to_dict() | {"model": weights, "ema": {"shadow": weights}, "step": 0})


class Enhancer:
    """A speech-enhancement network (DiffWave, EMA weights) with its mel front end and schedules."""

    def __init__(self, model: DiffWave, bundle: EnhancerBundle, device: str | torch.device = "cpu",
                 precision: str = "auto"):
        self.device = torch.device(device)
        self.precision = check_precision(precision, self.device)
        self.model, self.bundle = model.to(self.device).eval(), bundle
        self.featurizer = MelFeaturizer(bundle.mel_config).to(self.device)
        self.sample_rate = bundle.mel_config.sample_rate

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True,
                        precision: str = "auto") -> "Enhancer":
        """The enhancer of a checkpoint file, a run folder's newest checkpoint, or an export folder."""
        entries, weights, source = load(path, FAMILY, "a speech enhancer", use_ema=use_ema,
                                        hint=" (train one with recipes/enhance.py)")
        with rebuilding_from(source, "enhancer", "re-export it with this wavegrad"):
            bundle = EnhancerBundle.from_dict(entries)
            model = DiffWave(bundle.model_config)
            model.load_state_dict(weights)
        return cls(model, bundle, device, precision)

    @classmethod
    def from_pretrained(cls, source: str | Path, device: str | torch.device = "cpu",
                        precision: str = "auto") -> "Enhancer":
        """An exported folder (``wavegrad export``), or a Hugging Face Hub id ("user/name", ``wavegrad[hub]``)."""
        from .checkpoint import hub_download
        folder = Path(source)
        return cls.from_checkpoint(folder if folder.exists() else hub_download(str(source)), device,
                                   precision=precision)

    def save_pretrained(self, folder: str | Path) -> Path:
        return save_pretrained_folder(folder, self.model.state_dict(), self.bundle.to_dict())

    def schedule(self, steps: int | None) -> NoiseSchedule:
        """The inference schedule: the checkpoint's (CDiffuSE's 6 betas), or the training schedule respaced."""
        if steps is None:
            return self.bundle.inference
        if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= len(self.bundle.schedule):
            raise UserInputError(f"steps must be an integer in [1, {len(self.bundle.schedule)}], got {steps!r}")
        return self.bundle.schedule.respace(steps)

    @torch.inference_mode()
    def __call__(self, noisy, steps: int | None = None, *, sampler: str = "cdiffuse", seed: int = 0,
                 chunk_frames: int | None = DEFAULT_CHUNK_FRAMES, overlap_frames: int | None = None) -> torch.Tensor:
        """``noisy [T]`` (float, at :attr:`sample_rate`) -> enhanced ``[T]``. ``sampler``: cdiffuse (the paper's
        ancestral steps) or ddim (deterministic); ``steps``: None for the checkpoint's inference schedule."""
        if sampler not in SAMPLERS:
            raise UserInputError(f"unknown enhancement sampler {sampler!r}; choose from {', '.join(SAMPLERS)}")
        y, n, scale = self._prepare(noisy)
        schedule = self.schedule(steps)
        mel = self.featurizer.paired(y)[0]
        windows = window_options(self.model, chunk_frames, overlap_frames, 1, 32)
        silence = float(self.featurizer(torch.zeros(4 * self.model.cfg.hop_length, device=self.device)).mean())
        denoise = WindowedDenoiser(self.model, [mel], pad_value=silence, precision=self.precision,
                                   signals=[y] if self.model.cfg.signal_condition else None, **windows)
        out = enhance(denoise, y[None], schedule, eta=SAMPLERS[sampler], gamma=self.bundle.gamma,
                      generator=torch.Generator().manual_seed(seed), clip_x0=1.0)[0]
        return out[:n] / scale

    def _prepare(self, noisy) -> tuple[torch.Tensor, int, float]:
        """(the input scaled to peak at most PEAK and padded to whole hops, its length, the scale)."""
        y = torch.as_tensor(noisy)
        if y.ndim != 1 or not y.is_floating_point():
            raise UserInputError(f"the noisy recording must be a float waveform [T], got {y.dtype} {tuple(y.shape)}")
        if not torch.isfinite(y).all():
            raise UserInputError("the noisy recording contains NaN or inf samples")
        hop, n = self.model.cfg.hop_length, y.shape[0]
        if n < max(4 * hop, self.bundle.mel_config.min_length):
            raise UserInputError(f"the recording has {n} samples: too short to enhance (need {4 * hop})")
        peak = float(y.abs().max())
        if peak == 0:
            raise UserInputError("the noisy recording is all silent: nothing to enhance")
        scale = PEAK / peak if peak > PEAK else 1.0
        y = torch.nn.functional.pad(y.float() * scale, (0, -n % hop)).to(self.device)
        return y, n, scale
