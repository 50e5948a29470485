"""README's pictures, made by the documented commands from trained runs (`make pictures`).

    python recipes/readme_pictures.py [--vocoder runs/quick] [--images runs/mnist-quick] [--out docs]

* ``vocode_trajectory.png``: `wavegrad vocode --trajectory` on the first held-out clip of the quick-start corpus
* ``infill_trajectory.png``: `wavegrad vocode --infill 1.0:1.1 --trajectory` on the same clip (100 ms regenerated)
* ``inpaint.png`` / ``inpaint.gif``: `wavegrad sample --inpaint --mask --trajectory` on a held-out digit whose
  lower half is regenerated

Each is written by the `wavegrad` command a user would run; this script only picks the inputs (and stores the
two figures with a 256-colour palette, to keep the repository small).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from wavegrad.cli import main as wavegrad


def _run(argv: list) -> None:
    print("wavegrad " + " ".join(map(str, argv)))
    if wavegrad([str(a) for a in argv]) != 0:
        raise SystemExit(2)


def audio_pictures(run: Path, data_dir: Path, out: Path, tmp: Path) -> None:
    from wavegrad.data import load_split
    clip = data_dir / "wavs" / f"{load_split(data_dir, 'test')[0]}.wav"
    _run(["vocode", run, clip, "--out-dir", tmp / "vocoded", "--steps", 50, "--trajectory",
          out / "vocode_trajectory.png"])
    _run(["vocode", run, clip, "--out-dir", tmp / "infilled", "--infill", "1.0:1.1", "--steps", 50,
          "--trajectory", out / "infill_trajectory.png"])


def image_pictures(run: Path, data_dir: Path, out: Path, tmp: Path) -> None:
    from wavegrad.data.images import encode_png, read_mnist
    images, _ = read_mnist(data_dir, "test")
    digit = images[0]                                                     # [28, 28] uint8
    keep = np.zeros_like(digit)
    keep[: digit.shape[0] // 2] = 255                                     # keep the top half, fill the rest
    (tmp / "digit.png").write_bytes(encode_png(digit))
    (tmp / "keep.png").write_bytes(encode_png(keep))
    _run(["sample", run, "--inpaint", tmp / "digit.png", "--mask", tmp / "keep.png", "--n", 16, "--steps", 50,
          "--out", out / "inpaint.png", "--trajectory", out / "inpaint.gif"])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--vocoder", type=Path, default=Path("runs/quick"), help="a vocoder run or checkpoint")
    p.add_argument("--data-dir", type=Path, default=Path("data/quickstart"), help="its corpus (test split)")
    p.add_argument("--images", type=Path, default=Path("runs/mnist-quick"), help="an MNIST run or checkpoint")
    p.add_argument("--image-data", type=Path, default=Path("data/mnist"), help="MNIST IDX files (test split)")
    p.add_argument("--out", type=Path, default=Path("docs"), help="folder for the pictures")
    args = p.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        audio_pictures(args.vocoder, args.data_dir, args.out, Path(tmp))
        image_pictures(args.images, args.image_data, args.out, Path(tmp))
    for name in ("vocode_trajectory.png", "infill_trajectory.png"):
        _palette(args.out / name)
    for f in sorted(args.out.iterdir()):
        print(f"{f}: {f.stat().st_size / 1024:.0f} KiB")


def _palette(path: Path) -> None:
    """Re-save a matplotlib PNG with a 256-colour palette: a third of the bytes, the same picture to the eye."""
    from PIL import Image
    with Image.open(path) as im:
        small = im.convert("RGB").quantize(256)
    small.save(path, optimize=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
