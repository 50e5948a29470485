"""wavegrad: diffusion vocoders (WaveGrad) and image diffusion on one continuous-noise-level core."""
__version__ = "0.1.0"


def __getattr__(name):  # lazy: `import wavegrad` stays cheap, `from wavegrad import Vocoder` works
    if name == "Vocoder":
        from .vocoder import Vocoder
        return Vocoder
    if name == "Enhancer":
        from .enhance import Enhancer
        return Enhancer
    raise AttributeError(f"module 'wavegrad' has no attribute {name!r}")
