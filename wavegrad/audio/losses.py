"""Differentiable spectral losses on waveforms, per example: what GAN vocoders train with beside their
discriminators, here for the diffusion vocoder's x0 estimate (``training/vocoder_losses.py``).

* :func:`stft_loss`: the multi-resolution STFT loss of Parallel WaveGAN (Yamamoto et al. 2020, eqs. 1-3): per
  resolution, spectral convergence ``||S - Ŝ||_F / ||S||_F`` plus the log-magnitude L1 ``mean|ln S - ln Ŝ|``,
  averaged over the resolutions (its training set: (1024, 120, 600), (2048, 240, 1200), (512, 50, 240) at 24 kHz).
* :func:`mel_l1`: HiFi-GAN's mel-spectrogram L1 (Kong et al. 2020, eq. 3; weight 45 beside its adversarial loss),
  on the run's own log-mel convention.

Both return one value per example ``[B]`` so that a caller can weigh examples (by noise level) before averaging;
both are exactly 0 for identical inputs and equal the metrics' closed forms for a pure gain (tested).
"""
from __future__ import annotations

from typing import Sequence

import torch

from .mel import MelFeaturizer

# Parallel WaveGAN's training resolutions (n_fft, hop, win) -- at 22.05 kHz as at its 24 kHz
PWG_RESOLUTIONS: tuple[tuple[int, int, int], ...] = ((1024, 120, 600), (2048, 240, 1200), (512, 50, 240))
POWER_FLOOR = 1e-7        # Parallel WaveGAN's clamp on |X|² before the square root


def _magnitude(x: torch.Tensor, n_fft: int, hop: int, win: int) -> torch.Tensor:
    """``[B, T] -> [B, frames, n_fft/2 + 1]``: Hann-windowed, centred, reflect-padded STFT magnitude."""
    window = torch.hann_window(win, device=x.device, dtype=torch.float32)
    spec = torch.stft(x.float(), n_fft, hop, win, window, center=True, pad_mode="reflect", return_complex=True)
    return torch.view_as_real(spec).square().sum(-1).clamp_min(POWER_FLOOR).sqrt().transpose(1, 2)


def stft_loss(x: torch.Tensor, target: torch.Tensor,
              resolutions: Sequence[tuple[int, int, int]] = PWG_RESOLUTIONS) -> torch.Tensor:
    """Multi-resolution STFT loss per example: ``x, target [B, T] -> [B]`` (spectral convergence + log-magnitude L1,
    averaged over ``resolutions``)."""
    total = x.new_zeros(x.shape[0], dtype=torch.float32)
    for n_fft, hop, win in resolutions:
        s, s_hat = _magnitude(target, n_fft, hop, win), _magnitude(x, n_fft, hop, win)   # [B, frames, bins]
        sc = (s - s_hat).flatten(1).norm(dim=1) / s.flatten(1).norm(dim=1)
        mag = (s.log() - s_hat.log()).abs().flatten(1).mean(1)
        total = total + sc + mag
    return total / len(resolutions)


def mel_l1(x: torch.Tensor, target: torch.Tensor, featurizer: MelFeaturizer) -> torch.Tensor:
    """L1 between log-mels of ``x`` and ``target [B, T]`` per example ``[B]``, in the featurizer's convention."""
    return (featurizer(x.float()) - featurizer(target.float())).abs().flatten(1).mean(1)
