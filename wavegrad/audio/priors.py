"""Data-dependent priors from the conditioning mel: PriorGrad and SpecGrad noise for the diffusion core.

The core's :class:`wavegrad.diffusion.Prior` is a pair of linear maps, ``color(z) = L z`` and ``whiten(r) ≈ L⁻¹ r``;
this module builds them from a batch of log-mels, so the vocoder binds a prior to the mels it vocodes as it
binds the mels themselves.

* **PriorGrad** (Lee et al., ICLR 2022, §3-4; the official ``PriorGrad-vocoder`` code): ``Sigma = diag(std²)``,
  the std of a frame a function of its energy ``E = sqrt(sum_b mel_b)`` (the linear magnitude mel summed over
  bands): ``std = clamp((min(E, energy_max) - energy_min) / (energy_max - energy_min), min=std_min)``, held for the
  frame's hop of samples. ``energy_min`` is the training set's smallest frame energy (a statistic stored in the
  checkpoint), ``energy_max = 4`` and ``std_min = 0.1`` PriorGrad's values.
* **SpecGrad** (Koizumi et al., Interspeech 2022, §3): ``L = G⁺ M G``, a time-varying filter in the STFT domain:
  ``G`` the STFT of the mel's own framing, ``G⁺`` its inverse, ``M`` per frame the minimum-phase response of the
  spectral envelope the mel implies -- the mel basis' pseudo-inverse applied to the linear mel, smoothed by
  cepstral liftering (order 24) and floored. ``whiten`` is the paper's approximation ``G⁺ M⁻¹ G`` (exact up to
  the STFT's redundancy: ``G G⁺ ≠ I``).
  Departure, the filter's level: the envelope is first put in the waveform's units (divided by the analysis
  window's energy ``sqrt(sum w²)``: white audio of std s then has an envelope of s), then multiplied by ``gain``
  and floored at ``floor``. The paper's implementations use the raw |STFT| units (a gain of 21 at a 1024-sample
  Hann window) and a floor of 0.01 there (a dynamic range of ~1000 across bins). Measured here, 250 steps of
  the quick preset, 50-step validation log-mel L1 (white prior: 3.52, PriorGrad: 3.08): gain 1 with floors
  1e-3 / 1e-2 / 3e-2 gave 4.35 / 5.28 / 3.52 (a prior 5x quieter than speech: the network's inputs and
  targets are tiny), gain 21 with floor 0.2 gave 3.10, gain 10 with floor 0.1 gave 2.67, the default.
  The floor bounds ``M⁻¹``, the weight of a bin in the loss: with a dynamic range above ~100 the network did
  not even learn to copy its input at the noisiest levels.

Long audio: a prior is computed once per clip from the clip's whole mel and applied to the whole clip's noise --
the sampler's state is the whole clip (the network alone is windowed), so there are no seams in the noise;
both priors are frame-local, so this equals computing them per window away from the clip's ends.
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Sequence

import torch

from ..config import param
from ..diffusion import WHITE, DiagonalPrior, Prior
from ..errors import UserInputError
from .mel import MelConfig, mel_basis

PRIORS = ("white", "priorgrad", "specgrad")


@dataclass
class PriorConfig:
    """The prior noise of the diffusion: white, or built from the conditioning mel."""

    kind: str = param("white", "noise prior: white N(0, I) (WaveGrad), PriorGrad's frame-energy std (Lee et al. "
                               "2022) or SpecGrad's spectral-envelope filter (Koizumi et al. 2022)", choices=PRIORS,
                      flag="prior")
    std_min: float = param(0.1, "PriorGrad: smallest prior std (silence)", paper="0.1 (PriorGrad)")
    energy_max: float = param(4.0, "PriorGrad: frame energy mapped to std 1 (louder frames are clipped)",
                              paper="4.0 (PriorGrad's max_energy_override)")
    lifter: int = param(24, "SpecGrad: cepstral lifter order of the spectral envelope", paper="24 (SpecGrad)")
    gain: float = param(10.0, "SpecGrad: the filter's gain over the mel's spectral envelope in waveform units (1: "
                              "prior noise at the level of the speech it stands for)",
                        paper="~21 (raw |STFT| units of a 1024 window, the implementations)")
    floor: float = param(0.1, "SpecGrad: smallest filter gain |M| (after --prior-gain); bounds M⁻¹, the loss "
                              "weight of quiet bins", paper="0.01 in |STFT| units (the implementations)")

    def validate(self) -> None:
        if self.kind not in PRIORS:
            raise UserInputError(f"--prior must be one of {', '.join(PRIORS)}, got {self.kind!r}")
        if not 0 < self.std_min <= 1 or not self.energy_max > 0:
            raise UserInputError(f"PriorGrad needs 0 < std_min <= 1 and energy_max > 0, got {self.std_min}, "
                                 f"{self.energy_max}")
        if self.lifter < 1 or not self.floor > 0 or not self.gain > 0:
            raise UserInputError(f"SpecGrad needs lifter >= 1, floor > 0 and gain > 0, got {self.lifter}, "
                                 f"{self.floor}, {self.gain}")


def frame_energy(mel: torch.Tensor, mel_config: MelConfig) -> torch.Tensor:
    """PriorGrad's frame energy ``E = sqrt(sum_b m_b)``, ``m`` the linear magnitude mel: ``[B, n_mels, F] -> [B, F]``
    (PriorGrad's ``energy_max = 4`` is calibrated on HiFi-GAN-scale magnitudes)."""
    return linear_mel(mel, mel_config).sum(1).sqrt()


def linear_mel(mel: torch.Tensor, mel_config: MelConfig) -> torch.Tensor:
    """The linear (magnitude) mel of a log-mel in ``mel_config``'s convention (its log, floor and affine map undone)."""
    return mel_config.decode_log(mel.float()).clamp(min=0)


def priorgrad_std(mel: torch.Tensor, mel_config: MelConfig, energy_min: float, *, energy_max: float = 4.0,
                  std_min: float = 0.1) -> torch.Tensor:
    """PriorGrad's per-sample std ``[B, F * hop]`` of log-mels ``[B, n_mels, F]`` (each frame held for a hop)."""
    if not energy_max > energy_min:
        raise UserInputError(f"PriorGrad's energy_max ({energy_max}) must exceed energy_min ({energy_min})")
    energy = frame_energy(mel, mel_config).clamp(max=energy_max)                    # [B, F]
    std = ((energy - energy_min) / (energy_max - energy_min)).clamp(min=std_min)    # [B, F]
    return std.repeat_interleave(mel_config.hop_length, dim=1)                       # [B, F * hop]


class SpecGradFilter(Prior):
    """``color(z) = G⁺ (M ⊙ G z)``, ``whiten(r) = G⁺ (G r / M)`` for a batch of clips, each masked to its length."""

    def __init__(self, response: torch.Tensor, mel_config: MelConfig, lengths: Sequence[int]):
        self.response = response                                                     # [B, n_fft/2+1, F+1] complex
        self.cfg = mel_config
        self.lengths = list(lengths)
        self.window = torch.hann_window(mel_config.win_length, periodic=True, device=response.device)

    def _filter(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        cfg, n = self.cfg, x.shape[-1]
        spec = torch.stft(x.float(), cfg.n_fft, cfg.hop_length, cfg.win_length, self.window, center=True,
                          pad_mode="constant", return_complex=True)                  # [B, K, frames]
        frames = min(spec.shape[-1], gain.shape[-1])
        spec = spec[..., :frames] * gain[..., :frames]
        out = torch.istft(spec, cfg.n_fft, cfg.hop_length, cfg.win_length, self.window, center=True, length=n)
        return (out * self._mask(x)).to(x.dtype)                                     # [B, T]

    def _mask(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.arange(x.shape[-1], device=x.device)
        return (t[None, :] < torch.tensor(self.lengths, device=x.device)[:, None]).to(torch.float32)

    def color(self, z: torch.Tensor) -> torch.Tensor:
        return self._filter(z, self.response)

    def whiten(self, r: torch.Tensor) -> torch.Tensor:
        return self._filter(r, 1.0 / self.response)


def specgrad_response(mel: torch.Tensor, mel_config: MelConfig, *, lifter: int = 24, floor: float = 0.1,
                      gain: float = 10.0) -> torch.Tensor:
    """SpecGrad's filter ``M`` for log-mels ``[B, n_mels, F]``: complex ``[B, n_fft/2+1, F+1]`` on the frames of a
    centred STFT (frame j centred on sample j·hop: HiFi-GAN's mel frames j-1 and j, centred half a hop either side,
    averaged in the log; a centred convention's frame j itself)."""
    cfg = mel_config
    amp = _pinv_basis(cfg).to(mel.device) @ linear_mel(mel, cfg)                     # [B, K, F] |STFT| estimate
    if not cfg.normalized:   # a normalised STFT is in the waveform's units already
        amp = amp / _window_energy(cfg)
    log_env = _lifter((gain * amp).clamp(min=floor).log(), lifter, cfg.n_fft)       # [B, K, F]
    log_env = torch.log(log_env.exp() + floor)                                       # floor after smoothing
    if cfg.center:
        log_env = torch.cat([log_env, log_env[..., -1:]], dim=-1)                    # [B, K, F+1]
    else:
        padded = torch.cat([log_env[..., :1], log_env, log_env[..., -1:]], dim=-1)   # [B, K, F+2]
        log_env = 0.5 * (padded[..., :-1] + padded[..., 1:])                         # [B, K, F+1] STFT frames
    return _minimum_phase(log_env, cfg.n_fft)


@functools.lru_cache(maxsize=8)
def _pinv_basis(cfg: MelConfig) -> torch.Tensor:
    """Pseudo-inverse of the mel filterbank, float32 [n_fft/2+1, n_mels] (computed once per convention)."""
    return torch.linalg.pinv(torch.from_numpy(mel_basis(cfg)).double()).float()


def _window_energy(cfg: MelConfig) -> float:
    """sqrt(sum w²) of the analysis window: |STFT| of white noise of std s is about s times this."""
    w = torch.hann_window(cfg.win_length, periodic=cfg.window_periodic, dtype=torch.float64)
    return float(w.square().sum().sqrt())


def _lifter(log_amp: torch.Tensor, order: int, n_fft: int) -> torch.Tensor:
    """Cepstral smoothing of a one-sided log spectrum ``[B, K, F]`` (K = n_fft/2 + 1): the real cepstrum of the
    symmetric spectrum, quefrencies |q| < order kept (the spectral envelope)."""
    ceps = torch.fft.irfft(log_amp, n=n_fft, dim=1)                                   # [B, n_fft, F], real, even
    q = torch.arange(n_fft, device=log_amp.device)
    keep = ((q < order) | (q > n_fft - order)).to(ceps.dtype)[None, :, None]
    return torch.fft.rfft(ceps * keep, n=n_fft, dim=1).real                          # [B, K, F]


def _minimum_phase(log_amp: torch.Tensor, n_fft: int) -> torch.Tensor:
    """The minimum-phase spectrum with magnitude ``exp(log_amp)`` (Oppenheim & Schafer, the folded cepstrum):
    c_mp[0] = c[0], c_mp[q] = 2 c[q] for 0 < q < n/2, c_mp[n/2] = c[n/2], 0 for negative quefrencies."""
    ceps = torch.fft.irfft(log_amp, n=n_fft, dim=1)                                   # [B, n_fft, F]
    fold = torch.zeros(n_fft, device=log_amp.device, dtype=ceps.dtype)
    fold[0], fold[1:n_fft // 2], fold[n_fft // 2] = 1.0, 2.0, 1.0
    return torch.exp(torch.fft.rfft(ceps * fold[None, :, None], n=n_fft, dim=1))     # [B, K, F] complex


# ---- the prior a vocoder binds to a batch of mels ----------------------------------------------------------------
def build_prior(cfg: PriorConfig, stats: dict, mel: torch.Tensor, mel_config: MelConfig,
                lengths: Sequence[int] | None = None) -> Prior:
    """The prior of a batch of log-mels ``[B, n_mels, F]`` (padded clips: ``lengths`` in samples; the tail past a
    clip's length gets unit std / no filter output). ``stats``: the training set's statistics (PriorGrad's
    ``energy_min``)."""
    if cfg.kind == "white":
        return WHITE
    hop = mel_config.hop_length
    lengths = list(lengths) if lengths is not None else [mel.shape[-1] * hop] * mel.shape[0]
    if cfg.kind == "priorgrad":
        std = priorgrad_std(mel, mel_config, stats["energy_min"], energy_max=cfg.energy_max, std_min=cfg.std_min)
        t = torch.arange(std.shape[-1], device=std.device)
        inside = t[None, :] < torch.tensor(lengths, device=std.device)[:, None]
        return DiagonalPrior(torch.where(inside, std, torch.ones_like(std)))
    response = specgrad_response(mel, mel_config, lifter=cfg.lifter, floor=cfg.floor, gain=cfg.gain)
    return SpecGradFilter(response, mel_config, lengths)


def prior_statistics(cfg: PriorConfig, mels, mel_config: MelConfig) -> dict:
    """The training-set statistics a prior needs, from an iterable of log-mels ``[n_mels, F]`` (PriorGrad: the
    smallest frame energy, ``energy_min``); ``{}`` for the others."""
    if cfg.kind != "priorgrad":
        return {}
    lowest = math.inf
    for mel in mels:
        lowest = min(lowest, float(frame_energy(mel[None], mel_config).min()))
    if not math.isfinite(lowest):
        raise UserInputError("PriorGrad needs at least one training clip to measure the frame energies")
    return {"energy_min": lowest}
