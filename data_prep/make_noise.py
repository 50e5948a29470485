"""Generate noise recordings of named kinds, for speech enhancement without real noise recordings at hand.

    python data_prep/make_noise.py --out data/noise/train --kinds white,brown,hum,engine,clicks
    python data_prep/make_noise.py --out data/noise/test --kinds pink,babble --speech-dir data/quickstart

Writes OUT/<kind>-<i>.wav (22050 Hz mono 16-bit, --seconds each, --per-kind of each kind); every file depends only
on (seed, kind, index). Kinds (wavegrad.data.noise): white, pink, brown, hum, engine, babble (voices from
--speech-dir talking over each other), clicks. Train on some kinds and score on others to measure what a model
does with noise it never heard. Exit code 2 with a one-line message on bad input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

try:
    import wavegrad  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wavegrad.config import ArgumentParser  # noqa: E402
from wavegrad.data.noise import KINDS, make_noise_corpus  # noqa: E402
from wavegrad.errors import run_main  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="make_noise.py", description=__doc__.split("\n\n")[0],
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, type=Path, help="output folder")
    p.add_argument("--kinds", required=True, help=f"comma-separated kinds: {', '.join(KINDS)}")
    p.add_argument("--per-kind", type=int, default=3, help="recordings per kind")
    p.add_argument("--seconds", type=float, default=20.0, help="length of each recording")
    p.add_argument("--sample-rate", type=int, default=22050, help="sample rate in Hz")
    p.add_argument("--seed", type=int, default=0, help="random seed")
    p.add_argument("--speech-dir", type=Path, default=None, help="LJSpeech-layout folder whose voices make babble")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)

    def body() -> int:
        kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
        out = make_noise_corpus(args.out, kinds, per_kind=args.per_kind, seconds=args.seconds,
                                sample_rate=args.sample_rate, seed=args.seed, speech_dir=args.speech_dir)
        print(f"{out}: {len(kinds) * args.per_kind} noise recordings ({', '.join(kinds)}), {args.seconds:g} s each")
        return 0
    return run_main("make_noise.py", body)


if __name__ == "__main__":
    sys.exit(main())
