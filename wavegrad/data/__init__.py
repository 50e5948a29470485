"""Data: LJSpeech-layout corpora (metadata, checks, splits, mel cache, datasets), MNIST/CIFAR-10 readers,
and the generated quick-start corpus."""
from .corpus_check import check_corpus, has_errors
from .datasets import Clips, VocoderDataset, check_segment_length
from .mel_cache import MelCache
from .metadata import Problem, Utterance, read_metadata
from .splits import SPLIT_NAMES, Splits, load_split, make_splits, write_splits

__all__ = ["Clips", "MelCache", "Problem", "SPLIT_NAMES", "Splits", "Utterance", "VocoderDataset", "check_corpus",
           "check_segment_length", "has_errors", "load_split", "make_splits", "read_metadata", "write_splits"]
