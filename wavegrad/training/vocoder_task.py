"""The WaveGrad vocoder as a training task for the shared loop (see trainer.py)."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import MelConfig, MelFeaturizer, write_audio
from ..diffusion import NoiseSchedule, eps_loss, q_sample
from ..errors import UserInputError
from ..models import WaveGrad, WaveGradConfig
from ..vocoder import vocode


@dataclass
class ScheduleConfig:
    """The training schedule. Default: Ho et al.'s linear 1e-4 … 0.02 over 1000 steps, whose noisiest
    level sqrt(alpha_bar_T) = 0.0064 makes the N(0, I) start of sampling a faithful one."""
    kind: str = "linear"       # "linear" | "cosine"
    n: int = 1000
    beta_start: float = 1e-4
    beta_end: float = 0.02

    def build(self) -> NoiseSchedule:
        if self.kind == "linear":
            return NoiseSchedule.linear(self.n, self.beta_start, self.beta_end)
        if self.kind == "cosine":
            return NoiseSchedule.cosine(self.n)
        raise UserInputError(f"schedule kind must be linear or cosine, got {self.kind!r}")


@dataclass
class VocoderDataConfig:
    data_dir: str = ""
    segment_length: int = 7168   # 28 frames of hop 256 ≈ WaveGrad's 7200-sample (0.3 s at 24 kHz) crops
    peak_normalize: bool = False
    mel_cache_dir: str = ""      # optional: log-mels precomputed by `data_prep/ljspeech.py cache-mels`
    val_clips: int = 4           # validation clips vocoded at every validation
    val_seconds: float = 2.0     # ... each cut to at most this long
    val_steps: int = 50          # respaced ancestral steps for validation (un-searched 6 steps is unstable early)
    val_seed: int = 0


class VocoderTask:
    family = "vocoder"

    def __init__(self, model_cfg: WaveGradConfig, mel_cfg: MelConfig, data_cfg: VocoderDataConfig,
                 sched_cfg: ScheduleConfig, loss_kind: str = "l1"):
        if model_cfg.n_mels != mel_cfg.n_mels or model_cfg.hop_length != mel_cfg.hop_length:
            raise UserInputError(f"model (n_mels={model_cfg.n_mels}, hop={model_cfg.hop_length}) and mel config "
                                 f"(n_mels={mel_cfg.n_mels}, hop={mel_cfg.hop_length}) disagree; make them match")
        self.model_cfg, self.mel_cfg, self.data_cfg, self.sched_cfg = model_cfg, mel_cfg, data_cfg, sched_cfg
        self.loss_kind = loss_kind
        self.model = WaveGrad(model_cfg)
        self.schedule = sched_cfg.build()
        self.featurizer = MelFeaturizer(mel_cfg)
        from ..data.ljspeech import MelCache, VocoderDataset, load_split
        data_dir = Path(data_cfg.data_dir)
        cache = (MelCache(data_cfg.mel_cache_dir, mel_cfg, peak_normalize=data_cfg.peak_normalize)
                 if data_cfg.mel_cache_dir else None)
        self.train_set = VocoderDataset(data_dir, load_split(data_dir, "train"), mel_cfg, data_cfg.segment_length,
                                        peak_normalize=data_cfg.peak_normalize, mel_cache=cache)
        val_ids = load_split(data_dir, "val")[: data_cfg.val_clips]
        self.val_set = VocoderDataset(data_dir, val_ids, mel_cfg, data_cfg.segment_length,
                                      peak_normalize=data_cfg.peak_normalize, whole_clips=True)

    # -- the loop's interface ----------------------------------------------------------------------
    def loss(self, model, batch: dict[str, torch.Tensor], noise) -> torch.Tensor:
        audio = batch["audio"]  # [B, T]
        mel = batch.get("mel")  # [B, n_mels, T / hop] from a mel cache, else computed here on the device
        if mel is None:
            with torch.no_grad():
                mel = self._featurizer(audio.device)(audio)
        level, eps = noise(audio)  # [B], [B, T]
        eps_hat = model(q_sample(audio, level, eps), level, mel)
        return eps_loss(eps_hat, eps, self.loss_kind)

    def validate(self, model: WaveGrad, step: int, writer, out_dir: Path) -> dict[str, float]:
        """Vocode the validation clips with the EMA weights; log-mel L1 against the real mels."""
        device = next(model.parameters()).device
        feat = self._featurizer(device)
        sched = self.schedule.respace(min(self.data_cfg.val_steps, len(self.schedule)))
        g = torch.Generator().manual_seed(self.data_cfg.val_seed)
        l1s = []
        hop = self.mel_cfg.hop_length
        max_len = max(int(self.data_cfg.val_seconds * self.mel_cfg.sample_rate) // hop, 1) * hop
        for k in range(len(self.val_set)):
            item = self.val_set[k]
            utt, wav = item["id"], item["audio"][:max_len].to(device)[None]  # [1, T]
            mel = feat(wav)  # [1, n_mels, frames]
            out = vocode(model, mel, sched, eta=1.0, generator=g)  # [1, T]
            l1s.append((feat(out) - mel).abs().mean().item())
            write_audio(out_dir / f"{utt}.wav", out[0].cpu().numpy(), self.mel_cfg.sample_rate)
            if writer is not None and k < 2:
                sr = self.mel_cfg.sample_rate
                writer.add_audio(f"val/{utt}", out[0].clamp(-1, 1).cpu()[None], step, sample_rate=sr)
                writer.add_image(f"val_mel/{utt}", _mel_image(feat(out)[0], mel[0]), step)
        return {"log_mel_l1": float(np.mean(l1s))} if l1s else {}

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"family": self.family, "model_config": self.model_cfg.to_dict(),
                "mel_config": self.mel_cfg.to_dict(), "data_config": dataclasses.asdict(self.data_cfg),
                "schedule_config": dataclasses.asdict(self.sched_cfg), "schedules": {}}

    def check_compatible(self, ckpt: dict, path) -> None:
        if ckpt.get("family") != self.family or ckpt.get("model_config") != self.model_cfg.to_dict():
            raise UserInputError(f"{path}: cannot resume: it holds a different model "
                                 f"({ckpt.get('family')}, {ckpt.get('model_config')}); use a new --run-dir")
        if ckpt.get("mel_config") != self.mel_cfg.to_dict():
            raise UserInputError(f"{path}: cannot resume: its mel config differs from this run's")

    def _featurizer(self, device) -> MelFeaturizer:
        if self.featurizer.mel_basis.device != torch.device(device):
            self.featurizer = self.featurizer.to(device)
        return self.featurizer


def _mel_image(generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """[n_mels, F] pair -> [1, 2·n_mels, F] grey image in [0, 1], real on top, low bands at the bottom."""
    both = torch.cat([real.flip(0), generated.flip(0)], 0)
    lo, hi = real.min(), real.max()
    return ((both - lo) / (hi - lo + 1e-8)).clamp(0, 1)[None].cpu()

