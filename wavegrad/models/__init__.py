"""Denoisers conditioned on a continuous noise level: ``net(x_noisy, noise_level, ...) -> eps_hat``."""
from .embedding import noise_level_embedding
from .wavegrad import WaveGrad, WaveGradConfig, count_parameters

__all__ = ["WaveGrad", "WaveGradConfig", "count_parameters", "noise_level_embedding"]
