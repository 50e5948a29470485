"""The inference API: a trained checkpoint turns log-mels into waveforms.

    voc = Vocoder.from_checkpoint("run/checkpoints/step-00010000.pt", device="cpu")
    wav = voc(mel, steps=6)                  # or schedule="<name stored in the checkpoint>", eta=0.0
"""
from __future__ import annotations

from pathlib import Path

import torch

from .audio import MelConfig, MelFeaturizer
from .diffusion import NoiseSchedule, sample
from .errors import UserInputError
from .models import WaveGrad, WaveGradConfig


def save_vocoder_checkpoint(path: str | Path, model: WaveGrad, mel_config: MelConfig,
                            train_schedule: NoiseSchedule, schedules: dict[str, NoiseSchedule] | None = None) -> Path:
    """A minimal inference checkpoint (no optimizer state): the weights serve as EMA and raw weights."""
    from .training.checkpoint import save_checkpoint
    weights = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return save_checkpoint(path, {
        "family": "vocoder", "model_config": model.cfg.to_dict(), "mel_config": mel_config.to_dict(),
        "schedule": train_schedule.to_dict(), "schedules": {k: v.to_dict() for k, v in (schedules or {}).items()},
        "model": weights, "ema": {"shadow": weights}, "step": 0})


@torch.inference_mode()
def vocode(model: WaveGrad, mel: torch.Tensor, schedule: NoiseSchedule, *, eta: float = 1.0,
           generator: torch.Generator | None = None, clip: float | None = 1.0,
           progress: bool = False) -> torch.Tensor:
    """``mel [B, n_mels, frames] -> wav [B, frames * hop]`` by ``sample`` over ``schedule``.

    The mel features are encoded once per utterance, not once per step; ``clip`` bounds the
    predicted clean signal to the audio range [-clip, clip] (guards runaway amplitude).
    """
    mel_features = model.encode_mel(mel)  # [B, mel_ch, frames]

    def denoise(x: torch.Tensor, level: torch.Tensor) -> torch.Tensor:
        return model.denoise(x, model.noise_embeddings(level), mel_features)

    shape = (mel.shape[0], mel.shape[-1] * model.cfg.hop_length)
    return sample(denoise, shape, schedule, eta=eta, generator=generator, device=mel.device,
                  dtype=mel.dtype, clip_x0=clip, progress=progress)


class Vocoder:
    """A WaveGrad network (EMA weights) with its mel front end and its noise schedules."""

    def __init__(self, model: WaveGrad, mel_config: MelConfig, train_schedule: NoiseSchedule,
                 schedules: dict[str, NoiseSchedule] | None = None, device: str | torch.device = "cpu"):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.mel_config = mel_config
        self.train_schedule = train_schedule
        self.schedules = dict(schedules or {})
        self.featurizer = MelFeaturizer(mel_config).to(self.device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, device: str | torch.device = "cpu", use_ema: bool = True) -> "Vocoder":
        from .training.checkpoint import load_checkpoint
        ckpt = load_checkpoint(path)
        if ckpt.get("family") != "vocoder":
            raise UserInputError(f"{path}: this is a {ckpt.get('family')!r} checkpoint, not a vocoder one")
        model = WaveGrad(WaveGradConfig.from_dict(ckpt["model_config"]))
        weights = ckpt["ema"]["shadow"] if use_ema else ckpt["model"]
        model.load_state_dict(weights)
        schedules = {k: NoiseSchedule.from_dict(v) for k, v in ckpt.get("schedules", {}).items()}
        return cls(model, MelConfig.from_dict(ckpt["mel_config"]), NoiseSchedule.from_dict(ckpt["schedule"]),
                   schedules, device)

    def add_schedule(self, path: str | Path, name: str, schedule: NoiseSchedule) -> None:
        """Store ``schedule`` under ``name`` in the checkpoint at ``path`` (atomic: on any failure the
        old file stays intact) and in this Vocoder."""
        from .training.checkpoint import load_checkpoint, save_checkpoint
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

    @torch.inference_mode()
    def __call__(self, mel: torch.Tensor, steps: int | None = None, schedule: str | NoiseSchedule | None = None,
                 eta: float = 1.0, generator: torch.Generator | None = None, progress: bool = False) -> torch.Tensor:
        """Log-mel [n_mels, frames] -> wav [frames * hop]; [B, n_mels, frames] -> [B, frames * hop]."""
        squeeze = torch.as_tensor(mel).ndim == 2
        wav = vocode(self.model, self.check_mel(mel), self.resolve_schedule(steps, schedule), eta=eta,
                     generator=generator, progress=progress)
        return wav[0] if squeeze else wav
