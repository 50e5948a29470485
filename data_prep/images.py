#!/usr/bin/env python
"""MNIST / CIFAR-10 preparation: explicit download (needs internet), checks, generated stand-ins.

    python data_prep/images.py download mnist data/mnist        # the 4 official IDX .gz files (~11 MB)
    python data_prep/images.py download cifar10 data/cifar10    # cifar-10-python.tar.gz (~163 MB), extracted
    python data_prep/images.py check cifar10 data/cifar10       # read every split with the library's readers
    python data_prep/images.py generate mnist /tmp/fake-mnist --n 2000   # offline stand-in, real formats

`download` is the only place in the project that touches the network, and only when run by hand;
every file is checked against its published MD5 before it is kept (written atomically). The readers
(wavegrad.data.images) and the recipes never download. `generate` writes simple synthetic shapes in the
exact official formats (IDX / python pickle batches) for trying the pipeline offline: not real data.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import tarfile
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from a checkout without installing

from wavegrad.config import ArgumentParser  # noqa: E402
from wavegrad.errors import UserInputError, run_main  # noqa: E402
from wavegrad.utils import atomic_path  # noqa: E402

# Official files and MD5 sums (as published with torchvision's dataset classes).
MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"]
MNIST_FILES = {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
               "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
               "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
               "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"


def _md5(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _fetch(urls: list[str], dest: Path, md5: str) -> None:
    if dest.is_file() and _md5(dest) == md5:
        print(f"  {dest.name}: present, checksum ok")
        return
    last = None
    for url in urls:
        print(f"  {url} -> {dest}")
        try:
            with atomic_path(dest) as tmp:
                with urllib.request.urlopen(url, timeout=60) as r, open(tmp, "wb") as f:
                    while block := r.read(1 << 20):
                        f.write(block)
                got = _md5(tmp)
                if got != md5:
                    raise OSError(f"checksum mismatch (md5 {got}, expected {md5})")
            return
        except OSError as e:  # URLError is an OSError
            last = e
            print(f"    failed: {e}")
    raise UserInputError(f"could not download {dest.name} ({last}); fetch it by hand into {dest.parent}")


def download(name: str, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if name == "mnist":
        for fname, md5 in MNIST_FILES.items():
            _fetch([m + fname for m in MNIST_MIRRORS], folder / fname, md5)
    else:
        archive = folder / "cifar-10-python.tar.gz"
        _fetch([CIFAR10_URL], archive, CIFAR10_MD5)
        with tarfile.open(archive) as tar:
            members = [m for m in tar.getmembers() if m.name.startswith("cifar-10-batches-py/") and m.isfile()]
            try:
                tar.extractall(folder, members=members, filter="data")  # no absolute paths, no links out
            except TypeError:  # Python < 3.10.12 without extraction filters; names were checked above
                tar.extractall(folder, members=members)
        print(f"  extracted {len(members)} files to {folder / 'cifar-10-batches-py'}")
    check(name, folder)


def check(name: str, folder: Path) -> None:
    from wavegrad.data.images import cifar10_class_names, read_cifar10, read_mnist
    reader = read_mnist if name == "mnist" else read_cifar10
    for split in ("train", "test"):
        x, y = reader(folder, split)
        counts = ", ".join(str(int((y == k).sum())) for k in range(10))
        print(f"{name} {split}: {len(x)} images {x.shape[1:]} {x.dtype}, per class [{counts}]")
    if name == "cifar10":
        print(f"classes: {', '.join(cifar10_class_names(folder))}")


def generate(name: str, folder: Path, n: int, n_test: int, seed: int) -> None:
    from wavegrad.data.images import generated_images, write_cifar10, write_mnist
    if n < 1 or n_test < 1:
        raise UserInputError("--n and --n-test must be >= 1")
    size, channels = (28, 1) if name == "mnist" else (32, 3)
    for split, count, s in (("train", n, seed), ("test", n_test, seed + 1)):
        imgs, labels = generated_images(count, size, channels, seed=s)
        if name == "mnist":
            write_mnist(folder, imgs, labels, split, gz=True)
        else:
            write_cifar10(folder, imgs, labels, split)
    print(f"wrote {n} + {n_test} generated {name}-format images (synthetic shapes, not real data) to {folder}")


def main(argv=None) -> int:
    p = ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="cmd", required=True)
    for cmd, help_text in (("download", "download the official files (internet) and check them"),
                           ("check", "read every split with the library's readers and print counts"),
                           ("generate", "write synthetic images in the official on-disk format")):
        sp = sub.add_parser(cmd, help=help_text)
        sp.add_argument("dataset", choices=["mnist", "cifar10"])
        sp.add_argument("folder", type=Path)
        if cmd == "generate":
            sp.add_argument("--n", type=int, default=2000, help="training images")
            sp.add_argument("--n-test", type=int, default=200, help="test images")
            sp.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.cmd == "download":
        return run_main("images.py", lambda: download(args.dataset, args.folder))
    if args.cmd == "check":
        return run_main("images.py", lambda: check(args.dataset, args.folder))
    return run_main("images.py", lambda: generate(args.dataset, args.folder, args.n, args.n_test, args.seed))


if __name__ == "__main__":
    sys.exit(main())
