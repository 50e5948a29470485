"""Losses a vocoder run may add to the diffusion objective: a spectral loss on the network's x0 estimate, and
InferGrad's loss through the few-step sampler.

* **x0 spectral loss.** At level ``a`` the eps prediction implies ``x0_hat = (x_t - sqrt(1 - a²)·eps_hat)/a``
  (Ho et al. 2020, eq. 15); the multi-resolution STFT loss (Parallel WaveGAN) plus the log-mel L1 (HiFi-GAN) of
  ``x0_hat`` against the clip, weighted per example by ``a²``: near 1 where the state is mostly signal and x0_hat
  should be the clip itself, near 0 where it is mostly noise and x0_hat is only the posterior mean (whose spectrum
  is duller than any clip's). It teaches the envelope and harmonics the mel describes directly, as the mel L1
  teaches GAN vocoders (HiFi-GAN weighs it 45 against its adversarial terms).
* **InferGrad** (Chen et al., ICASSP 2022, arXiv 2202.03751, eq. 7): every ``rollout_every``-th step a short crop
  is sampled from prior noise by the few-step sampler the vocoder will be run with -- here DDIM (eta = 0) over
  ``rollout_steps`` Karras-spaced levels of the training range -- keeping the graph through every step (x0 estimates
  clamped to [-1, 1] as in sampling), and the multi-resolution STFT loss of its output against the crop is added with ``rollout_weight``. The paper: 2-3
  iterations trained so match WaveGrad's 6 (its Table 1).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ..audio import MelFeaturizer
from ..audio.losses import PWG_RESOLUTIONS, mel_l1, stft_loss
from ..config import param
from ..diffusion import NoiseSchedule, SamplingPlan, sample
from ..diffusion.plan import KARRAS_RHO
from ..errors import UserInputError


@dataclass
class VocoderLossConfig:
    """Losses beside the diffusion objective (all off by default: WaveGrad's objective alone)."""

    spectral_weight: float = param(0.0, "weight of the multi-resolution STFT + log-mel L1 loss on the x0 estimate, "
                                        "each example weighted by a² (0: off)", paper="0 (WaveGrad)")
    rollout_every: int = param(0, "InferGrad: add the loss through the few-step sampler every this many steps "
                                  "(0: off)", paper="every step (InferGrad)")
    rollout_steps: int = param(2, "InferGrad: sampler steps of the rollout (DDIM, Karras-spaced)",
                               paper="2-6 (InferGrad)")
    rollout_seconds: float = param(0.25, "InferGrad: length of the crop the rollout samples (the start of each "
                                         "training crop)")
    rollout_weight: float = param(1.0, "InferGrad: weight of the rollout's multi-resolution STFT loss")

    def validate(self) -> None:
        if self.spectral_weight < 0 or self.rollout_weight < 0 or self.rollout_every < 0:
            raise UserInputError("--spectral-weight, --rollout-weight and --rollout-every must be >= 0")
        if self.rollout_every and not (1 <= self.rollout_steps <= 50 and self.rollout_seconds > 0):
            raise UserInputError(f"--rollout-steps must be in 1..50 and --rollout-seconds > 0, got "
                                 f"{self.rollout_steps}, {self.rollout_seconds}")


def x0_estimate(x_t: torch.Tensor, level: torch.Tensor, eps_hat: torch.Tensor) -> torch.Tensor:
    """``x0_hat = (x_t - sqrt(1 - a²)·eps_hat) / a`` at levels ``a [B]`` (Ho et al. 2020, eq. 15)."""
    a = level.to(x_t.dtype)[:, None]                                                    # [B, 1]
    return (x_t - (1.0 - a * a).clamp_min(0).sqrt() * eps_hat.to(x_t.dtype)) / a


def spectral_x0_loss(x0_hat: torch.Tensor, x0: torch.Tensor, level: torch.Tensor,
                     featurizer: MelFeaturizer) -> torch.Tensor:
    """The a²-weighted multi-resolution STFT + log-mel L1 of ``x0_hat [B, T]`` against ``x0 [B, T]`` (a scalar)."""
    per = stft_loss(x0_hat, x0) + mel_l1(x0_hat, x0, featurizer)                        # [B]
    return (level.float() ** 2 * per).mean()


def rollout_schedule(train: NoiseSchedule, steps: int) -> NoiseSchedule:
    """The rollout's ``steps`` Karras-spaced levels (rho = 7) over the training schedule's sigma range."""
    sigmas = train.sigmas
    return NoiseSchedule.karras(steps, float(sigmas[0]), float(sigmas[-1]), KARRAS_RHO)


def rollout_loss(denoise, x0: torch.Tensor, train: NoiseSchedule, cfg: VocoderLossConfig, hop: int, *,
                 prior=None, generator: torch.Generator | None = None) -> torch.Tensor:
    """InferGrad's loss: DDIM (eta = 0) from prior noise over :func:`rollout_schedule`, the graph kept through every
    step, and the multi-resolution STFT loss of the sample against ``x0 [B, T]`` (its first ``rollout_seconds``,
    whole hops; ``denoise`` must be bound to the same crop)."""
    plan = SamplingPlan.of(rollout_schedule(train, cfg.rollout_steps), "ddim", eta=0.0)
    out = sample(denoise, tuple(x0.shape), plan, generator=generator, prior=prior, device=x0.device, grad=True,
                 clip_x0=1.0)                                     # x0 estimates clamped as the vocoder clamps them
    return stft_loss(out, x0).mean()


def rollout_length(cfg: VocoderLossConfig, sample_rate: int, hop: int, segment: int) -> int:
    """The rollout crop in samples: ``rollout_seconds`` in whole hops, longer than the STFT loss's largest window
    (its reflect padding needs it), at most the segment."""
    longest = max(n_fft for n_fft, _, _ in PWG_RESOLUTIONS) // hop + 1
    return min(segment, max(longest, round(cfg.rollout_seconds * sample_rate / hop)) * hop)
