"""Denoisers conditioned on a continuous noise level: ``net(x_noisy, noise_level, ...) -> eps_hat``."""
from .embedding import noise_level_embedding
from .image_unet import ImageUNet, ImageUNetConfig, guided_denoiser  # noqa: F401 (image family)
from .wavegrad import WaveGrad, WaveGradConfig, count_parameters

__all__ = ["ImageUNet", "ImageUNetConfig", "WaveGrad", "WaveGradConfig", "count_parameters", "guided_denoiser",
           "noise_level_embedding"]
