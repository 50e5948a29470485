"""Denoisers conditioned on a continuous noise level: ``net(x_noisy, noise_level, ...) -> eps_hat``.

Vocoders (``net(x [B, T], level [B], mel [B, n_mels, frames])``): WaveGrad, DiffWave and FreGrad, all with the
sampling interface ``encode_mel`` / ``noise_embeddings`` / ``denoise``; ``VOCODERS`` maps an architecture name
(stored in checkpoints) to its network and config classes. Images: the DDPM UNet.
"""
from .diffwave import DiffWave, DiffWaveConfig
from .embedding import noise_level_embedding
from .fregrad import FreGrad, FreGradConfig
from .image_unet import ImageUNet, ImageUNetConfig, guided_denoiser
from .wavegrad import WaveGrad, WaveGradConfig, count_parameters

VOCODERS = {"wavegrad": (WaveGrad, WaveGradConfig), "diffwave": (DiffWave, DiffWaveConfig),
            "fregrad": (FreGrad, FreGradConfig)}


def vocoder_architecture(model) -> str:
    """The architecture name of a vocoder network or config (its key in ``VOCODERS``)."""
    for name, classes in VOCODERS.items():
        if isinstance(model, classes):
            return name
    raise TypeError(f"not a vocoder network or config: {type(model).__name__}")


__all__ = ["DiffWave", "DiffWaveConfig", "FreGrad", "FreGradConfig", "ImageUNet", "ImageUNetConfig", "VOCODERS",
           "WaveGrad", "WaveGradConfig", "count_parameters", "guided_denoiser", "noise_level_embedding",
           "vocoder_architecture"]
