"""The mel-conditioned vocoder as a training task for the shared loop (see trainer.py)."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..audio import MelConfig, MelFeaturizer, write_audio
from ..audio.consistency import RECOMMENDED
from ..audio.metrics import log_mel_l1
from ..audio.priors import PriorConfig, build_prior, prior_statistics
from ..bundle import VocoderBundle
from ..config import param, to_dict
from ..diffusion import ScheduleConfig, diffusion_loss
from ..diffusion.preconditioning import ObjectiveConfig, Parametrization, loss_weights
from ..diffusion.vlb import hybrid_loss
from ..errors import UserInputError
from ..models import VOCODERS, vocoder_architecture
from ..trajectory import Trajectory
from ..vocoder import vocode
from .vocoder_losses import VocoderLossConfig, rollout_length, rollout_loss, spectral_x0_loss, x0_estimate


@dataclass
class VocoderDataConfig:
    """The corpus, the training crops and what a validation vocodes."""

    data_dir: str = param("", "LJSpeech-layout folder: metadata.csv, wavs/ and train/val/test.txt split lists "
                              "(`python data_prep/ljspeech.py split DATA_DIR`)")
    segment_length: int = param(7168, "training crop in samples, a multiple of the hop",
                                paper="7200 at 24 kHz (WaveGrad); 7168 = 28 hops of 256")
    peak_normalize: bool = param(False, "scale every clip to a peak of 0.95 first (HiFi-GAN's loader)")
    mel_cache_dir: str = param("", "log-mels precomputed by `data_prep/ljspeech.py cache-mels` (empty: "
                                   "computed on the training device)")
    val_clips: int = param(4, "validation clips vocoded at every validation")
    val_seconds: float = param(2.0, "each validation clip is cut to at most this long")
    val_steps: int = param(50, "respaced ancestral steps of a validation (an un-searched 6 is unstable early)")
    val_seed: int = param(0, "noise seed of the validation samples")


class VocoderTask:
    family = "vocoder"

    def __init__(self, model_cfg, mel_cfg: MelConfig, data_cfg: VocoderDataConfig,
                 sched_cfg: ScheduleConfig, loss_kind: str = "l1", *, seed: int = 0,
                 prior: PriorConfig | None = None, objective: ObjectiveConfig | None = None,
                 losses: VocoderLossConfig | None = None):
        if model_cfg.n_mels != mel_cfg.n_mels or model_cfg.hop_length != mel_cfg.hop_length:
            raise UserInputError(f"model (n_mels={model_cfg.n_mels}, hop={model_cfg.hop_length}) and mel config "
                                 f"(n_mels={mel_cfg.n_mels}, hop={mel_cfg.hop_length}) disagree; make them match")
        self.model_cfg, self.mel_cfg, self.data_cfg, self.sched_cfg = model_cfg, mel_cfg, data_cfg, sched_cfg
        self.loss_kind = loss_kind
        self.prior_cfg = prior or PriorConfig()
        self.prior_cfg.validate()
        self.objective = objective or ObjectiveConfig()      # the trainer draws its levels from objective.levels
        self.objective.validate()
        self.losses = losses or VocoderLossConfig()
        self.losses.validate()
        self.architecture = vocoder_architecture(model_cfg)        # a key of VOCODERS
        with torch.random.fork_rng(devices=[]):  # the initial weights are a function of the run's seed alone
            torch.manual_seed(seed)
            self.model = VOCODERS[self.architecture][0](model_cfg)
        self.schedule = sched_cfg.build()
        self.featurizer = MelFeaturizer(mel_cfg)
        from ..data import Clips, MelCache, VocoderDataset, load_split
        data_dir = Path(data_cfg.data_dir)
        cache = (MelCache(data_cfg.mel_cache_dir, mel_cfg, peak_normalize=data_cfg.peak_normalize)
                 if data_cfg.mel_cache_dir else None)
        self.train_set = VocoderDataset(data_dir, load_split(data_dir, "train"), mel_cfg, data_cfg.segment_length,
                                        peak_normalize=data_cfg.peak_normalize, mel_cache=cache)
        val_ids = load_split(data_dir, "val")[: data_cfg.val_clips]
        self.val_set = Clips(data_dir, val_ids, mel_cfg, peak_normalize=data_cfg.peak_normalize)
        self.prior_stats = self._prior_statistics(data_dir, load_split(data_dir, "train"), cache)

    def _prior_statistics(self, data_dir: Path, ids: list[str], cache) -> dict:
        """The prior's training-set statistics (PriorGrad: the smallest frame energy), from whole clips."""
        if self.prior_cfg.kind != "priorgrad":
            return {}
        from ..data import Clips
        clips = Clips(data_dir, ids, self.mel_cfg, peak_normalize=self.data_cfg.peak_normalize, mel_cache=cache)

        def mels():
            for i in range(len(clips)):
                item = clips[i]
                if "mel" in item:
                    yield item["mel"]
                else:
                    with torch.no_grad():
                        yield self.featurizer(item["audio"])[0]
        return prior_statistics(self.prior_cfg, mels(), self.mel_cfg)

    def prior(self, mel: torch.Tensor):
        """The prior bound to a batch of log-mels ``[B, n_mels, F]`` (white by default)."""
        return build_prior(self.prior_cfg, self.prior_stats, mel, self.mel_cfg)

    # -- the loop's interface ----------------------------------------------------------------------
    def loss(self, model, batch: dict[str, torch.Tensor], noise) -> torch.Tensor:
        audio = batch["audio"]  # [B, T]
        mel = batch.get("mel")  # [B, n_mels, T / hop] from a mel cache, else computed here on the device
        if mel is None:
            with torch.no_grad():
                mel = self._featurizer(audio.device).paired(audio)
        level, z = noise(audio)  # [B], [B, T]
        denoise = self._eps_denoiser(model, mel)
        prior = self.prior(mel)
        if self.model_cfg.learn_sigma:   # Improved DDPM: L_simple + 0.001 L_vlb (audio: a continuous decoder)
            return hybrid_loss(denoise, audio, level, z, self.schedule, kind=self.loss_kind, prior=prior,
                               bin_width=None)
        seen: dict = {}
        loss = diffusion_loss(denoise, audio, level, z, kind=self.loss_kind, prior=prior, outputs=seen,
                              weights=loss_weights(level, self.objective, self.loss_kind))
        if self.losses.spectral_weight:
            x0_hat = x0_estimate(seen["x_t"], level, seen["eps_hat"])
            loss = loss + self.losses.spectral_weight * spectral_x0_loss(x0_hat, audio, level,
                                                                         self._featurizer(audio.device))
        step = getattr(noise, "step", None)
        if self.losses.rollout_every and step is not None and step % self.losses.rollout_every == 0:
            loss = loss + self.losses.rollout_weight * self._rollout(model, audio, mel, step)
        return loss

    def _eps_denoiser(self, model, mel: torch.Tensor):
        """``(x, level) -> eps`` of the network bound to ``mel``, through the run's parametrisation."""
        return self.objective.network_parametrization().wrap(lambda x, level: model(x, level, mel))

    def _rollout(self, model, audio: torch.Tensor, mel: torch.Tensor, step: int) -> torch.Tensor:
        """InferGrad's loss on the first ``rollout_seconds`` of every crop (noise seeded by the step)."""
        hop = self.mel_cfg.hop_length
        n = rollout_length(self.losses, self.mel_cfg.sample_rate, hop, audio.shape[-1])
        crop_mel = mel[..., : n // hop]
        g = torch.Generator(device=audio.device).manual_seed(0x1F3D + step)
        return rollout_loss(self._eps_denoiser(model, crop_mel), audio[:, :n], self.schedule, self.losses, hop,
                            prior=self.prior(crop_mel), generator=g)

    def validate(self, model, step: int, writer, out_dir: Path) -> dict[str, float]:
        """Vocode the validation clips with the EMA weights; log-mel L1 against the real audio."""
        device = next(model.parameters()).device
        feat = self._featurizer(device)
        sched = self.schedule.respace(min(self.data_cfg.val_steps, len(self.schedule)))
        g = torch.Generator().manual_seed(self.data_cfg.val_seed)
        l1s = []
        hop, sr = self.mel_cfg.hop_length, self.mel_cfg.sample_rate
        max_len = max(int(self.data_cfg.val_seconds * sr) // hop, 1) * hop
        for k in range(len(self.val_set)):
            item = self.val_set[k]
            utt, wav = item["id"], item["audio"][:max_len].to(device)[None]  # [1, T]
            mel = feat.paired(wav)  # [1, n_mels, frames]
            record = Trajectory(Trajectory.evenly(len(sched), 6)) if (writer is not None and k == 0) else None
            out = vocode(model, mel, sched, eta=1.0, generator=g, prior=self.prior(mel), callback=record,
                         parametrization=self.objective.network_parametrization())               # [1, T]
            l1s.append(log_mel_l1(wav, out, self.mel_cfg))
            write_audio(out_dir / f"{utt}.wav", out[0].cpu().numpy(), sr)
            if writer is not None and k < 2:
                writer.add_audio(f"val/{utt}", out[0].clamp(-1, 1).cpu()[None], step, sample_rate=sr)
                writer.add_image(f"val_mel/{utt}", _mel_image(feat.paired(out)[0], mel[0]), step)
            if record is not None:    # WaveGrad's picture of the waveform refined step by step
                self._log_trajectory(writer, step, record, out[0], mel[0], out_dir / f"{utt}.trajectory.png")
        return {"log_mel_l1": float(np.mean(l1s))} if l1s else {}

    def _log_trajectory(self, writer, step: int, record, out, mel, path: Path) -> None:
        try:
            from ..trajectory import audio_figure
            audio_figure(path, record, out, mel, self._featurizer(out.device), self.mel_cfg.sample_rate)
        except UserInputError:                          # no matplotlib: the figure is optional
            return
        from PIL import Image
        with Image.open(path) as im:
            writer.add_image("val/trajectory", np.asarray(im.convert("RGB")), step, dataformats="HWC")

    def checkpoint_meta(self) -> dict[str, Any]:
        bundle = VocoderBundle(self.architecture, self.model_cfg, self.mel_cfg, self.schedule, prior=self.prior_cfg,
                               prior_stats=dict(self.prior_stats), consistency=RECOMMENDED,
                               parametrization=self.objective.network_parametrization())
        return bundle.to_dict() | {"data_config": to_dict(self.data_cfg), "schedule_config": to_dict(self.sched_cfg)}

    # what checkpoints written before these entries existed were: WaveGrad, white noise
    legacy_identity = {"architecture": "wavegrad",
                       "prior": {"config": to_dict(PriorConfig()), "stats": {}},
                       "parametrization": Parametrization().to_dict()}

    def identity(self) -> dict[str, Any]:
        meta = self.checkpoint_meta()
        return {k: meta[k] for k in ("family", "architecture", "model_config", "mel_config", "prior", "parametrization")}

    def identity_configs(self) -> dict[str, type]:
        """The classes the stored configs are read through before comparing (fields added later: defaults)."""
        return {"model_config": type(self.model_cfg), "mel_config": MelConfig}

    def _featurizer(self, device) -> MelFeaturizer:
        if self.featurizer.mel_basis.device != torch.device(device):
            self.featurizer = self.featurizer.to(device)
        return self.featurizer


def _mel_image(generated: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """[n_mels, F] pair -> [1, 2·n_mels, F] grey image in [0, 1], real on top, low bands at the bottom."""
    both = torch.cat([real.flip(0), generated.flip(0)], 0)
    lo, hi = real.min(), real.max()
    return ((both - lo) / (hi - lo + 1e-8)).clamp(0, 1)[None].cpu()
