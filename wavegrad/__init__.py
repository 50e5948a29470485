"""wavegrad: diffusion vocoders (WaveGrad) and image diffusion on one continuous-noise-level core."""
__version__ = "0.1.0"
