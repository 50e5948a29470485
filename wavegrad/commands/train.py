"""`wavegrad train`: every field of :class:`wavegrad.training.runs.VocoderRun` is a flag."""
from __future__ import annotations

import argparse

from ..config import HelpFormatter, add_arguments, from_args

DESCRIPTION = """\
Train a diffusion vocoder on an LJSpeech-layout folder. DATA_DIR needs metadata.csv, wavs/ and split lists
(make them with `python data_prep/ljspeech.py split DATA_DIR`). Every flag below is a field of the run's
config; the resolved run is written to RUN_DIR/config.json and into every checkpoint.
Several processes: `torchrun --nproc_per_node N -m wavegrad.cli train ...` (--batch-size is global).
"""


def register(sub, name: str) -> None:
    from ..training.runs import VocoderRun, add_resume
    p = sub.add_parser(name, help="train a diffusion vocoder on an LJSpeech-layout folder",
                       description=DESCRIPTION, formatter_class=HelpFormatter)
    add_resume(p)
    add_arguments(p, VocoderRun)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..training.runs import VocoderRun, train_vocoder
    trainer, path = train_vocoder(from_args(VocoderRun, args), resume=args.resume)
    trainer.acc.print(f"final checkpoint: {path}")
    return 0
