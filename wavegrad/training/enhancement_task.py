"""The speech-enhancement task for the shared trainer: CDiffuSE's conditional diffusion on (clean, noisy) crops."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import MelConfig, MelFeaturizer, write_audio
from ..config import param, to_dict
from ..diffusion import ScheduleConfig, eps_loss
from ..diffusion.conditional import q_sample_conditional
from ..enhance import EnhancerBundle, Enhancer
from ..errors import UserInputError
from ..models import DiffWave


@dataclass
class EnhanceDataConfig:
    """Where the clean speech and the noise come from, the training crops and what a validation enhances."""

    clean_dir: str = param("", "LJSpeech-layout folder of clean speech (its train/val splits), mixed with --noise-dir")
    noise_dir: str = param("", "folder of noise recordings (.wav/.flac/.ogg) mixed into the clean crops on the fly")
    voicebank: str = param("", "a VoiceBank-DEMAND folder (clean_trainset_wav/, noisy_trainset_wav/, ...) instead of "
                               "--clean-dir and --noise-dir", paper="VoiceBank-DEMAND (CDiffuSE)")
    snr_low: float = param(-5.0, "lowest SNR (dB) of the on-the-fly mixtures")
    snr_high: float = param(20.0, "highest SNR (dB) of the on-the-fly mixtures",
                            paper="VoiceBank-DEMAND's training SNRs: 0, 5, 10, 15 dB")
    segment_length: int = param(15872, "training crop in samples, a multiple of the hop",
                                paper="62 frames of 256 = 15872 (CDiffuSE)")
    val_clips: int = param(2, "validation mixtures enhanced at every validation")
    val_snr: float = param(5.0, "SNR (dB) of the validation mixtures")
    val_seconds: float = param(2.0, "each validation clip is cut to at most this long")


class EnhancementTask:
    """Trains DiffWave to predict CDiffuSE's combined noise eps~ from x_t, its level and the noisy mel."""

    family = "enhancer"

    def __init__(self, model_cfg, mel_cfg: MelConfig, data_cfg: EnhanceDataConfig, sched_cfg: ScheduleConfig,
                 loss_kind: str = "l1", *, seed: int = 0):
        if model_cfg.n_mels != mel_cfg.n_mels or model_cfg.hop_length != mel_cfg.hop_length:
            raise UserInputError(f"model (n_mels={model_cfg.n_mels}, hop={model_cfg.hop_length}) and mel config "
                                 f"(n_mels={mel_cfg.n_mels}, hop={mel_cfg.hop_length}) disagree; make them match")
        self.model_cfg, self.mel_cfg, self.data_cfg, self.sched_cfg = model_cfg, mel_cfg, data_cfg, sched_cfg
        self.loss_kind = loss_kind
        with torch.random.fork_rng(devices=[]):  # the initial weights are a function of the run's seed alone
            torch.manual_seed(seed)
            self.model = DiffWave(model_cfg)
        self.schedule = sched_cfg.build()
        self.featurizer = MelFeaturizer(mel_cfg)
        from ..data.enhancement import NoisyCrops
        sr = mel_cfg.sample_rate
        if data_cfg.voicebank:
            self.train_set = NoisyCrops(data_cfg.segment_length, sr, voicebank=data_cfg.voicebank)
            self.val_pairs = self._voicebank_val(sr)
        else:
            from ..data import load_split
            self.train_set = NoisyCrops(data_cfg.segment_length, sr, clean_dir=data_cfg.clean_dir,
                                        ids=load_split(data_cfg.clean_dir, "train"), noise_dir=data_cfg.noise_dir,
                                        snr_range=(data_cfg.snr_low, data_cfg.snr_high))
            self.val_pairs = self._mixed_val(sr)

    def _mixed_val(self, sr: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """Fixed validation mixtures: the first val clips, each with a seeded noise segment at ``val_snr``."""
        from ..data import Clips, load_split
        from ..data.enhancement import scaled_pair
        from ..data.noise import mix
        clips = Clips(self.data_cfg.clean_dir, load_split(self.data_cfg.clean_dir, "val")[:self.data_cfg.val_clips],
                      self.mel_cfg)
        n_max = int(self.data_cfg.val_seconds * sr)
        out = []
        for k in range(len(clips)):
            clean = clips[k]["audio"].numpy()[:n_max]
            noise = self.train_set.noise.segment(np.random.default_rng([k, 0xE7A1]), len(clean))
            out.append((clips[k]["id"], *scaled_pair(clean, mix(clean, noise, self.data_cfg.val_snr))))
        return out

    def _voicebank_val(self, sr: int) -> list[tuple[str, np.ndarray, np.ndarray]]:
        from ..data.voicebank import VoiceBankPairs
        pairs = VoiceBankPairs(self.data_cfg.voicebank, "test", sr, limit=self.data_cfg.val_clips)
        n_max = int(self.data_cfg.val_seconds * sr)
        return [(name, clean[:n_max], noisy[:n_max]) for clean, noisy, name in (pairs[k] for k in range(len(pairs)))]

    def loss(self, model, batch: dict[str, torch.Tensor], noise) -> torch.Tensor:
        clean, noisy = batch["clean"], batch["noisy"]                                  # [B, T] each
        with torch.no_grad():
            mel = self._featurizer(noisy.device).paired(noisy)                        # [B, n_mels, T / hop]
        level, z = noise(clean)
        x_t, target = q_sample_conditional(clean, noisy, level, z)
        signal = noisy if self.model_cfg.signal_condition else None
        return eps_loss(model(x_t, level, mel, signal).float(), target.float(), self.loss_kind)

    def validate(self, model, step: int, writer, out_dir: Path) -> dict[str, float]:
        """Enhance the validation mixtures with the EMA weights (6 CDiffuSE steps): SI-SDR improvement."""
        from ..audio.metrics import si_sdr
        enhancer = Enhancer(model, self.bundle(), device=next(model.parameters()).device, precision="fp32")
        gains = []
        for name, clean, noisy in self.val_pairs:
            out = enhancer(torch.from_numpy(noisy)).cpu().numpy()
            gains.append(si_sdr(clean, out) - si_sdr(clean, noisy))
            write_audio(out_dir / f"{name}.wav", out, self.mel_cfg.sample_rate)
            if writer is not None:
                writer.add_audio(f"val/{name}", torch.from_numpy(out).clamp(-1, 1)[None], step,
                                 sample_rate=self.mel_cfg.sample_rate)
        model.train()
        return {"si_sdr_improvement_db": float(np.mean(gains))} if gains else {}

    def bundle(self) -> EnhancerBundle:
        return EnhancerBundle(self.model_cfg, self.mel_cfg, self.schedule)

    def checkpoint_meta(self) -> dict[str, Any]:
        return self.bundle().to_dict() | {"data_config": to_dict(self.data_cfg),
                                          "schedule_config": to_dict(self.sched_cfg)}

    def identity(self) -> dict[str, Any]:
        meta = self.checkpoint_meta()
        return {k: meta[k] for k in ("family", "model_config", "mel_config")}

    def _featurizer(self, device) -> MelFeaturizer:
        if self.featurizer.mel_basis.device != torch.device(device):
            self.featurizer = self.featurizer.to(device)
        return self.featurizer
