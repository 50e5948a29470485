"""Audio front end: log-mel features (HiFi-GAN convention) and audio file I/O."""
from .io import pcm_to_float, peak_normalize, read_audio, read_pcm, write_audio
from .mel import MelConfig, MelFeaturizer, mel_basis

__all__ = ["MelConfig", "MelFeaturizer", "mel_basis", "pcm_to_float", "peak_normalize", "read_audio", "read_pcm",
           "write_audio"]
