"""Audio front end: log-mel features (HiFi-GAN convention) and audio file I/O."""
from .io import read_audio, write_audio
from .mel import MelConfig, MelFeaturizer, mel_basis

__all__ = ["MelConfig", "MelFeaturizer", "mel_basis", "read_audio", "write_audio"]
