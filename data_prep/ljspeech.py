"""Prepare an LJSpeech-layout folder (LJSpeech-1.1 or the generated corpus) for vocoder training.

    python data_prep/ljspeech.py check DATA_DIR [--full]
    python data_prep/ljspeech.py split DATA_DIR [--n-val 150 --n-test 100 --seed 1234 --overwrite]
    python data_prep/ljspeech.py cache-mels DATA_DIR --cache-dir DIR [--mel-config JSON]

Every command first checks the folder and prints each problem with its file and fix; it exits 2
when the folder is unusable (any error), 0 otherwise. Thin over ``wavegrad.data``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

try:
    import wavegrad  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wavegrad.audio import MelConfig  # noqa: E402
from wavegrad.data import MelCache, check_corpus, has_errors, read_metadata, write_splits  # noqa: E402
from wavegrad.config import ArgumentParser  # noqa: E402
from wavegrad.errors import UserInputError, run_main  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.ArgumentDefaultsHelpFormatter
    p = ArgumentParser(prog="ljspeech.py", description=__doc__.split("\n\n")[0], formatter_class=fmt)
    sub = p.add_subparsers(dest="command", required=True, metavar="{check,split,cache-mels}")

    def common(sp):
        sp.add_argument("data_dir", type=Path, help="folder with metadata.csv and wavs/")
        sp.add_argument("--sample-rate", type=int, default=None,
                        help="expected sample rate in Hz (default: the mel config's, 22050)")

    c = sub.add_parser("check", formatter_class=fmt, help="report every problem of the folder",
                       description="Check metadata rows and every listed wav; exit 2 if unusable.")
    common(c)
    c.add_argument("--full", action="store_true", help="also decode every wav (truncated, NaN, silent)")

    s = sub.add_parser("split", formatter_class=fmt, help="write train.txt / val.txt / test.txt",
                       description="Write deterministic train/val/test id lists next to metadata.csv.")
    common(s)
    s.add_argument("--n-val", type=int, default=150, help="validation clips (scaled down for small corpora)")
    s.add_argument("--n-test", type=int, default=100, help="test clips (scaled down for small corpora)")
    s.add_argument("--seed", type=int, default=1234, help="seed of the split permutation")
    s.add_argument("--out-dir", type=Path, default=None, help="where to write the lists (default: DATA_DIR)")
    s.add_argument("--overwrite", action="store_true", help="replace existing lists that differ")

    m = sub.add_parser("cache-mels", formatter_class=fmt, help="precompute log-mels of every clip",
                       description="Write CACHE_DIR/<mel config hash>/ID.npy for every clip not yet cached.")
    common(m)
    m.add_argument("--cache-dir", type=Path, required=True, default=argparse.SUPPRESS, help="cache root folder")
    m.add_argument("--mel-config", type=Path, default=None,
                   help="JSON file of MelConfig fields (default: HiFi-GAN LJSpeech, 22050 Hz, 80 bands)")
    m.add_argument("--peak-normalize", action="store_true", help="cache mels of 0.95 * x / max|x| audio")
    return p


def _mel_config(path: Path | None) -> MelConfig:
    if path is None:
        return MelConfig()
    try:
        return MelConfig.from_dict(json.loads(path.read_text()))
    except (OSError, ValueError, TypeError) as exc:
        first = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise UserInputError(f"cannot use --mel-config {path} ({first}); give a JSON object of MelConfig fields")


def report(data_dir: Path, sample_rate: int, full: bool = False) -> bool:
    """Print every problem; return True when the folder is usable (no errors)."""
    problems = check_corpus(data_dir, sample_rate, full=full, progress=True)
    n_rows = len(read_metadata(data_dir)) if not has_errors(problems) else None
    if not problems:
        print(f"{data_dir}: OK, {n_rows} clips, all mono {sample_rate} Hz")
        return True
    n_err = sum(p.severity == "error" for p in problems)
    print(f"{data_dir}: {n_err} error(s), {len(problems) - n_err} warning(s)")
    for p in problems:
        print(f"  {p.severity.upper():7s} {p.file}: {p.problem}\n          fix: {p.fix}")
    if n_err:
        print(f"{data_dir} is unusable until the errors above are fixed.")
    return not n_err


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_main("ljspeech.py", lambda: _run(args))


def _run(args: argparse.Namespace) -> int:
    mel_cfg = _mel_config(getattr(args, "mel_config", None))
    sample_rate = args.sample_rate or mel_cfg.sample_rate
    if args.command == "cache-mels" and sample_rate != mel_cfg.sample_rate:
        raise UserInputError(f"--sample-rate {sample_rate} differs from the mel config's "
                             f"{mel_cfg.sample_rate} Hz; drop one of them")
    if not report(args.data_dir, sample_rate, full=getattr(args, "full", False)):
        return 2
    if args.command == "split":
        splits = write_splits(args.data_dir, args.out_dir, n_val=args.n_val, n_test=args.n_test,
                              seed=args.seed, overwrite=args.overwrite)
        if splits.note:
            print(f"note: {splits.note}")
        out = args.out_dir or args.data_dir
        print(f"{out}: train {len(splits.train)}, val {len(splits.val)}, test {len(splits.test)} "
              f"(seed {args.seed}) in train.txt / val.txt / test.txt")
    elif args.command == "cache-mels":
        cache = MelCache(args.cache_dir, mel_cfg, peak_normalize=args.peak_normalize)
        n = cache.build(args.data_dir, progress=True)
        print(f"{cache.dir}: wrote {n} mel(s); the others were already cached")
    return 0


if __name__ == "__main__":
    sys.exit(main())
