"""The prior of the diffusion: the noise ``N(0, Sigma)``, ``Sigma = L Lᵀ``, that the forward process adds and
sampling starts from.

A prior is two linear maps: ``color(z) = L z`` turns white noise into prior noise, ``whiten(r)`` applies
``L⁻¹`` (or an approximation of it). With white noise both are the identity, the DDPM of Ho et al. 2020.
PriorGrad (Lee et al. 2022, eqs. 6-7) and SpecGrad (Koizumi et al. 2022, eqs. 6-9) replace them with
data-dependent maps: the forward process becomes ``x_t = a·x0 + sqrt(1 - a²)·L z``, the network predicts
the coloured noise ``eps = L z``, the loss is the Mahalanobis ``||L⁻¹(eps_hat - eps)||²``, and every sampler
draws its start and its step noise as ``L z``. The core never knows where ``L`` came from: the caller
binds a prior to the batch it conditions on (the vocoder builds them from mels in ``wavegrad.audio``).
"""
from __future__ import annotations

import torch


class Prior:
    """White noise: ``color`` and ``whiten`` are the identity. Subclasses override both."""

    def color(self, z: torch.Tensor) -> torch.Tensor:
        """White ``z [B, ...]`` -> prior noise ``L z`` of the same shape."""
        return z

    def whiten(self, r: torch.Tensor) -> torch.Tensor:
        """Prior-space ``r [B, ...]`` -> ``L⁻¹ r`` (exact or the prior's stated approximation)."""
        return r


WHITE = Prior()


class DiagonalPrior(Prior):
    """``Sigma = diag(std²)``: each element scaled by its own standard deviation ``std`` (broadcast to ``x``)."""

    def __init__(self, std: torch.Tensor):
        if not bool(torch.isfinite(std).all()) or not bool((std > 0).all()):
            raise ValueError("a diagonal prior needs finite, positive standard deviations")
        self.std = std

    def color(self, z: torch.Tensor) -> torch.Tensor:
        return z * self.std.to(z.dtype)

    def whiten(self, r: torch.Tensor) -> torch.Tensor:
        return r / self.std.to(r.dtype)
