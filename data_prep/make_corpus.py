"""Generate the quick-start corpus: speech-like audio in the LJSpeech layout, made from scratch.

    python data_prep/make_corpus.py --out data/synthetic [--n-clips 100] [--seed 0]

Writes ``OUT/metadata.csv`` and ``OUT/wavs/ID.wav`` (22050 Hz mono 16-bit PCM, 1-6 s each) plus a
``.make_corpus.json`` stamp; re-running with the same settings does nothing. The generator itself
is ``wavegrad.data.synthetic.make_speech_like_corpus`` (see its module docstring for how the audio
is made). Exit code 2 with a one-line message on bad input.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

try:
    import wavegrad  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wavegrad.data.synthetic import make_speech_like_corpus  # noqa: E402
from wavegrad.config import ArgumentParser  # noqa: E402
from wavegrad.errors import run_main  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="make_corpus.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", required=True, type=Path, default=argparse.SUPPRESS, help="output folder (created; must be empty or "
                                                           "hold a corpus made by this script)")
    p.add_argument("--n-clips", type=int, default=100, help="number of clips (about 3.5 s each on average)")
    p.add_argument("--seed", type=int, default=0, help="random seed; clip i depends only on (seed, i)")
    p.add_argument("--sample-rate", type=int, default=22050, help="sample rate in Hz")
    p.add_argument("--overwrite", action="store_true",
                   help="replace a corpus generated with other settings (and its split lists)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    t0 = time.perf_counter()
    stamp_before = (args.out / ".make_corpus.json").read_text() if (args.out / ".make_corpus.json").is_file() else None
    return run_main("make_corpus.py", lambda: _run(args, t0, stamp_before))


def _run(args: argparse.Namespace, t0: float, stamp_before: str | None) -> int:
    out = make_speech_like_corpus(args.out, n_clips=args.n_clips, seed=args.seed,
                                  sample_rate=args.sample_rate, overwrite=args.overwrite, progress=True)
    import soundfile as sf

    seconds = sum(sf.info(str(p)).duration for p in (out / "wavs").glob("*.wav"))
    if stamp_before == (out / ".make_corpus.json").read_text():
        print(f"{out}: already holds this corpus ({args.n_clips} clips, {seconds / 60:.1f} min); nothing to do")
    else:
        print(f"{out}: wrote {args.n_clips} clips, {seconds / 60:.1f} min of audio, "
              f"in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
