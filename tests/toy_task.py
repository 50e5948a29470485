"""A tiny, audio-free task for exercising the shared training loop (not a test module)."""
from __future__ import annotations

import torch
from torch import nn

from wavegrad.diffusion import NoiseSchedule, diffusion_loss


class ToyData:
    """N fixed vectors; the item seed adds a reproducible random sign flip (an 'augmentation')."""

    def __init__(self, n: int = 32, dim: int = 16):
        self.x = torch.randn(n, dim, generator=torch.Generator().manual_seed(123)).clamp(-1, 1)

    def __len__(self):
        return len(self.x)

    def __getitem__(self, key):
        i, seed = key
        sign = 1.0 if torch.randint(2, (), generator=torch.Generator().manual_seed(seed)) else -1.0
        return {"x": self.x[i] * sign}


class ToyDenoiser(nn.Module):
    def __init__(self, dim: int = 16, hidden: int = 64):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim + 1, hidden), nn.SiLU(), nn.Linear(hidden, dim))

    def forward(self, x, level):
        return self.net(torch.cat([x, level[:, None].to(x.dtype)], 1))


class ToyTask:
    family = "toy"

    def __init__(self, seed: int = 0):
        torch.manual_seed(seed)
        self.model = ToyDenoiser()
        self.train_set = ToyData()
        self.schedule = NoiseSchedule.linear(100, 1e-3, 0.1)
        self.validations = []

    def loss(self, model, batch, noise):
        x0 = batch["x"]
        return diffusion_loss(model, x0, *noise(x0), kind="l2")

    def validate(self, model, step, writer, out_dir):
        self.validations.append(step)
        return {"dummy": float(step)}

    def checkpoint_meta(self):
        return {"family": self.family, "model_config": {"dim": 16}}

    def identity(self):
        return {"family": self.family}
