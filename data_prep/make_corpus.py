"""Generate the quick-start corpus in the LJSpeech layout: sentences spoken by espeak-ng / flite, or formant-synthesised
speech-like audio made from scratch; and the held-out real recording.

    python data_prep/make_corpus.py --out data/quickstart [--kind auto|spoken|formant] [--n-clips N] [--seed 0]
    python data_prep/make_corpus.py --real data/real          # CMU ARCTIC's arctic_a0007 (ships with pysptk)

Writes ``OUT/metadata.csv`` and ``OUT/wavs/ID.wav`` (22050 Hz mono 16-bit PCM) plus a ``.make_corpus.json`` stamp;
re-running with the same settings does nothing. ``spoken`` (the default where espeak-ng or flite is installed: ``apt
install espeak-ng flite``) reads Harvard and grammar sentences aloud in nine voices, so transcripts are real and a
word error rate means something (``wavegrad.data.spoken``); ``formant`` needs nothing but numpy (pseudo-words,
``wavegrad.data.synthetic``). ``--real`` writes the one real recording an installed wheel carries, as a folder whose
test split is that clip (``wavegrad benchmark CKPT --data-dir data/real --clips 1 --seconds 5``). Exit code 2 with a
one-line message on bad input.
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

from wavegrad.config import ArgumentParser  # noqa: E402
from wavegrad.data.spoken import KINDS, make_quickstart, write_real_speech  # noqa: E402
from wavegrad.errors import UserInputError, run_main  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(
        prog="make_corpus.py", description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, default=None, help="output folder (created; must be empty or hold a corpus "
                                                          "made by this script)")
    p.add_argument("--kind", choices=KINDS, default="auto",
                   help="spoken: espeak-ng/flite sentences; formant: speech-like audio from scratch; auto: spoken "
                        "where a synthesiser is installed")
    p.add_argument("--n-clips", type=int, default=None, help="number of clips (default: 240 spoken, ~10 min; 100 "
                                                             "formant, ~6 min)")
    p.add_argument("--seed", type=int, default=0, help="random seed; clip i depends only on (seed, i)")
    p.add_argument("--sample-rate", type=int, default=22050, help="sample rate in Hz")
    p.add_argument("--overwrite", action="store_true",
                   help="formant corpus: replace one generated with other settings (and its split lists)")
    p.add_argument("--real", type=Path, default=None, metavar="DIR",
                   help="also write the held-out real recording (CMU ARCTIC arctic_a0007, from pysptk) to DIR")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main("make_corpus.py", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    if args.out is None and args.real is None:
        raise UserInputError("give --out DIR (the corpus) and/or --real DIR (the real recording)")
    if args.out is not None:
        t0 = time.perf_counter()
        stamp = args.out / ".make_corpus.json"
        before = stamp.read_text() if stamp.is_file() else None
        kind = make_quickstart(args.out, args.kind, args.n_clips, args.seed, args.sample_rate, args.overwrite)
        import soundfile as sf
        wavs = list((args.out / "wavs").glob("*.wav"))
        seconds = sum(sf.info(str(p)).duration for p in wavs)
        if before == stamp.read_text():
            print(f"{args.out}: already holds this corpus ({len(wavs)} clips, {seconds / 60:.1f} min); nothing to do")
        else:
            print(f"{args.out}: wrote {len(wavs)} {kind} clips, {seconds / 60:.1f} min of audio, "
                  f"in {time.perf_counter() - t0:.1f} s")
    if args.real is not None:
        write_real_speech(args.real, args.sample_rate)
        print(f"{args.real}: the real recording arctic_a0007 (CMU ARCTIC, speaker SLT), test split")
    return 0


if __name__ == "__main__":
    sys.exit(main())
