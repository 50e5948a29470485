"""Image datasets from their official on-disk formats, and PNG grids. Nothing here downloads.

* MNIST: the IDX files of LeCun et al. (``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``,
  ``t10k-...`` for the test split), plain or gzipped (``.gz``), in the folder itself or in
  torchvision's ``MNIST/raw/``. IDX = a big-endian header (magic 0x00000803 for a uint8 3-D array,
  0x00000801 for 1-D, then one uint32 per dimension) followed by the raw bytes.
* CIFAR-10: the "python version" batches (``data_batch_1`` … ``data_batch_5``, ``test_batch``,
  ``batches.meta``), in the folder or in ``cifar-10-batches-py/`` inside it. They are Python 2 pickles;
  they are read with a restricted unpickler that resolves only the three globals those files contain
  (numpy's ``_reconstruct``, ``ndarray`` and ``dtype``; plus ``_codecs.encode``, which Python 3
  re-pickles at protocol 2 use for byte strings), so a tampered file is refused, never run.

Readers return numpy arrays: images ``uint8 [N, H, W]`` (MNIST) or ``[N, H, W, 3]`` (CIFAR-10, HWC) and
labels ``int64 [N]``. Every problem is a one-line :class:`UserInputError` naming the file and the fix.
``data_prep/images.py`` downloads the official archives for users with internet access.

The writers (``write_mnist``, ``write_cifar10``) produce the same formats byte for byte; tests and the
quick recipes use them on generated images.
"""
from __future__ import annotations

import gzip
import io
import math
import pickle
import struct
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import UserInputError
from ..utils import atomic_path

DATA_PREP_HINT = "get the official files with `python data_prep/images.py download {name} {folder}`"
MNIST_CLASSES = tuple(str(d) for d in range(10))
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_SPLITS = ("train", "test")


def _write_file(path: Path, data: bytes) -> Path:
    """Atomic write with the usual permissions (the temp file of ``atomic_path`` is created 0600)."""
    import os
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
    return path


def _check_split(split: str) -> None:
    if split not in _SPLITS:
        raise UserInputError(f"split must be 'train' or 'test', got {split!r}")


def _check_folder(folder: Path, name: str) -> None:
    if not folder.exists():
        raise UserInputError(f"{name} folder {folder} does not exist; "
                             + DATA_PREP_HINT.format(name=name, folder=folder))
    if not folder.is_dir():
        raise UserInputError(f"{folder} is not a folder; give the folder that holds the {name} files")


# ---- MNIST (IDX) -------------------------------------------------------------------------------------------
IDX_UBYTE_1D, IDX_UBYTE_3D = 0x00000801, 0x00000803


def _find_idx(folder: Path, stem: str) -> Path:
    """``stem`` (e.g. train-images-idx3-ubyte) or its .gz, also under MNIST/raw or with '.idx' spelling."""
    dotted = stem.replace("-idx", ".idx")  # some mirrors ship train-images.idx3-ubyte
    for d in (folder, folder / "MNIST" / "raw", folder / "raw"):
        for name in (stem, stem + ".gz", dotted, dotted + ".gz"):
            if (d / name).is_file():
                return d / name
    raise UserInputError(f"{folder}: no {stem}[.gz] (MNIST IDX file) found; "
                         + DATA_PREP_HINT.format(name="mnist", folder=folder))


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise UserInputError(f"{path}: not a readable gzip file ({e}); it may be truncated: "
                                 f"download it again or gunzip a good copy") from None
    return raw


def read_idx(path: str | Path, magic: int, dims: int) -> np.ndarray:
    """An IDX file holding unsigned bytes -> uint8 array of its declared shape."""
    path = Path(path)
    raw = _read_bytes(path)
    head = 4 + 4 * dims
    if len(raw) < head:
        raise UserInputError(f"{path}: only {len(raw)} bytes, shorter than an IDX header ({head}); "
                             f"the file is truncated or not an MNIST file")
    (found,) = struct.unpack(">I", raw[:4])
    if found != magic:
        raise UserInputError(f"{path}: bad IDX magic number 0x{found:08x} (expected 0x{magic:08x} for a "
                             f"{dims}-D uint8 array); this is not the right MNIST file, or it is corrupted "
                             f"(a still-gzipped file without the .gz suffix starts with 0x1f8b)")
    shape = struct.unpack(f">{dims}I", raw[4:head])
    size = math.prod(shape)
    if len(raw) - head != size:
        raise UserInputError(f"{path}: header declares shape {shape} = {size} bytes of data but the file holds "
                             f"{len(raw) - head}; the file is truncated or corrupted: download it again")
    return np.frombuffer(raw, dtype=np.uint8, offset=head).reshape(shape).copy()


def read_mnist(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """MNIST images ``uint8 [N, 28, 28]`` and labels ``int64 [N]`` from the IDX files in ``folder``."""
    _check_split(split)
    folder = Path(folder)
    _check_folder(folder, "mnist")
    prefix = "train" if split == "train" else "t10k"
    img_path, lbl_path = _find_idx(folder, f"{prefix}-images-idx3-ubyte"), _find_idx(folder, f"{prefix}-labels-idx1-ubyte")
    images = read_idx(img_path, IDX_UBYTE_3D, 3)
    labels = read_idx(lbl_path, IDX_UBYTE_1D, 1).astype(np.int64)
    if images.shape[1:] != (28, 28):
        raise UserInputError(f"{img_path}: images are {images.shape[1]}x{images.shape[2]}, MNIST's are 28x28; "
                             f"is this another IDX dataset?")
    if len(labels) != len(images):
        raise UserInputError(f"{lbl_path} holds {len(labels)} labels but {img_path} holds {len(images)} images; "
                             f"the two files must come from the same split and download")
    if len(images) == 0:
        raise UserInputError(f"{img_path}: holds 0 images")
    if labels.max() > 9:
        raise UserInputError(f"{lbl_path}: label {int(labels.max())} is out of MNIST's range 0..9; corrupted file?")
    return images, labels


def write_idx(path: str | Path, array: np.ndarray, compress: bool | None = None) -> Path:
    """Write a uint8 array as IDX (gzipped when ``path`` ends in .gz), atomically."""
    path, arr = Path(path), np.ascontiguousarray(array, dtype=np.uint8)
    magic = {1: IDX_UBYTE_1D, 3: IDX_UBYTE_3D}.get(arr.ndim, 0x00000800 | arr.ndim)
    data = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    return _write_file(path, data)


def write_mnist(folder: str | Path, images: np.ndarray, labels: np.ndarray, split: str = "train",
                gz: bool = False) -> None:
    """``images uint8 [N, 28, 28]``, ``labels [N]`` -> ``{train|t10k}-{images-idx3|labels-idx1}-ubyte[.gz]``."""
    _check_split(split)
    prefix, ext = ("train" if split == "train" else "t10k"), (".gz" if gz else "")
    write_idx(Path(folder) / f"{prefix}-images-idx3-ubyte{ext}", images)
    write_idx(Path(folder) / f"{prefix}-labels-idx1-ubyte{ext}", np.asarray(labels).astype(np.uint8))


# ---- CIFAR-10 (python pickles) -------------------------------------------------------------------------------
def _numpy_reconstruct():
    try:  # numpy >= 2 keeps it in numpy._core; numpy.core is a deprecated alias
        from numpy._core.multiarray import _reconstruct
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import _reconstruct
    return _reconstruct


_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,   # the official (numpy 1.x, Python 2) files
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,  # the same data re-pickled under numpy 2
    ("numpy", "ndarray"): lambda: np.ndarray,
    ("numpy", "dtype"): lambda: np.dtype,
    # Python 3 re-pickles at protocol 2 spell byte strings as _codecs.encode(text, "latin1"): data only
    ("_codecs", "encode"): lambda: _latin1_encode,
}


def _latin1_encode(text: str, encoding: str = "latin1") -> bytes:
    if encoding not in ("latin1", "latin-1") or not isinstance(text, str):
        raise pickle.UnpicklingError(f"global '_codecs.encode' with encoding {encoding!r} is not allowed")
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    """Resolves only numpy's array reconstruction; anything else (os.system, builtins.eval…) is refused."""

    def find_class(self, module: str, name: str) -> Any:
        make = _ALLOWED_GLOBALS.get((module, name))
        if make is None:
            raise pickle.UnpicklingError(f"global '{module}.{name}' is not allowed")
        return make()

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("persistent ids are not allowed")


def load_cifar_pickle(path: str | Path) -> dict:
    """One CIFAR batch/meta file -> dict with str keys (the files' keys are Python 2 byte strings)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            obj = _CifarUnpickler(f, encoding="bytes").load()
    except pickle.UnpicklingError as e:
        if "is not allowed" in str(e):
            raise UserInputError(f"{path}: refused: the pickle references {str(e).split(' is not')[0]}, which the "
                                 f"official CIFAR-10 batches never contain (tampered or foreign file; nothing was "
                                 f"executed); " + DATA_PREP_HINT.format(name="cifar10", folder=path.parent)) from None
        raise UserInputError(f"{path}: not a readable CIFAR-10 pickle ({e}); truncated or corrupted? "
                             + DATA_PREP_HINT.format(name="cifar10", folder=path.parent)) from None
    except (EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError, struct.error,
            MemoryError, OverflowError, UnicodeDecodeError) as e:
        raise UserInputError(f"{path}: not a readable CIFAR-10 pickle ({type(e).__name__}: {str(e)[:80]}); "
                             f"truncated or corrupted? " + DATA_PREP_HINT.format(name="cifar10", folder=path.parent)) from None
    if not isinstance(obj, dict):
        raise UserInputError(f"{path}: expected a pickled dict (a CIFAR-10 batch), got {type(obj).__name__}")
    return {(k.decode("latin1") if isinstance(k, bytes) else str(k)): v for k, v in obj.items()}


def _cifar_dir(folder: Path) -> Path:
    for d in (folder, folder / "cifar-10-batches-py"):
        if (d / "data_batch_1").is_file() or (d / "test_batch").is_file():
            return d
    hint = ""
    if (folder / "cifar-10-python.tar.gz").is_file():
        hint = f"extract the archive first (tar xzf {folder / 'cifar-10-python.tar.gz'} -C {folder}), or "
    elif (folder / "cifar-10-batches-bin").is_dir():
        hint = "that is the binary version; use the python version (cifar-10-python.tar.gz), or "
    raise UserInputError(f"{folder}: no CIFAR-10 python batches (data_batch_1 … data_batch_5, test_batch), "
                         f"neither there nor in cifar-10-batches-py/; {hint}"
                         + DATA_PREP_HINT.format(name="cifar10", folder=folder))


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise UserInputError(f"{path}: missing CIFAR-10 batch; the folder must hold all of data_batch_1 … "
                             f"data_batch_5 and test_batch; " + DATA_PREP_HINT.format(name="cifar10", folder=path.parent))
    d = load_cifar_pickle(path)
    for key in ("data", "labels"):
        if key not in d:
            raise UserInputError(f"{path}: no '{key}' entry (keys: {sorted(d)}); not a CIFAR-10 batch "
                                 f"(CIFAR-100 uses 'fine_labels')")
    data = d["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise UserInputError(f"{path}: 'data' must be a uint8 array [N, 3072] (32x32x3, channel-major), got {desc}")
    try:
        labels = np.asarray(d["labels"], dtype=np.int64)
    except (TypeError, ValueError, OverflowError):
        raise UserInputError(f"{path}: 'labels' must be a list of integers") from None
    if labels.shape != (data.shape[0],):
        raise UserInputError(f"{path}: {labels.size} labels for {data.shape[0]} images; the batch is corrupted")
    if labels.size and (labels.min() < 0 or labels.max() > 9):
        raise UserInputError(f"{path}: labels must lie in 0..9, found {int(labels.min())}..{int(labels.max())}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)  # channel-major rows -> [N, 32, 32, 3]
    return np.ascontiguousarray(images), labels


def read_cifar10(folder: str | Path, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """CIFAR-10 images ``uint8 [N, 32, 32, 3]`` and labels ``int64 [N]`` from the python batches."""
    _check_split(split)
    folder = Path(folder)
    _check_folder(folder, "cifar10")
    d = _cifar_dir(folder)
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    parts = [_read_cifar_batch(d / n) for n in names]
    images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
    if len(images) == 0:
        raise UserInputError(f"{d}: the {split} batches hold 0 images")
    return images, labels


def cifar10_class_names(folder: str | Path) -> tuple[str, ...]:
    """Label names from ``batches.meta`` if present (validated), else the official ten."""
    folder = Path(folder)
    meta = _cifar_dir(folder) / "batches.meta"
    if not meta.is_file():
        return CIFAR10_CLASSES
    names = load_cifar_pickle(meta).get("label_names")
    if not isinstance(names, list) or len(names) != 10 or not all(isinstance(n, (bytes, str)) for n in names):
        raise UserInputError(f"{meta}: 'label_names' must be a list of 10 names; corrupted file?")
    return tuple(n.decode("latin1") if isinstance(n, bytes) else n for n in names)


class _Py2Pickler(pickle._Pickler):  # type: ignore[name-defined]
    """Writes byte and text strings as Python 2 ``str`` (SHORT_BINSTRING/BINSTRING), as the official files."""

    dispatch = dict(pickle._Pickler.dispatch)  # type: ignore[attr-defined]

    def _save_py2_str(self, obj) -> None:
        data = obj if isinstance(obj, bytes) else obj.encode("latin1")
        n = len(data)
        self.write((pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)) + data)
        self.memoize(obj)

    dispatch[bytes] = _save_py2_str
    dispatch[str] = _save_py2_str


def _py2_dumps(obj: Any) -> bytes:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    # numpy 2 names the array reconstructor numpy._core.multiarray; the official files say numpy.core
    return buf.getvalue().replace(b"cnumpy._core.multiarray\n_reconstruct\n", b"cnumpy.core.multiarray\n_reconstruct\n")


def write_cifar10(folder: str | Path, images: np.ndarray, labels: np.ndarray, split: str = "train",
                  n_batches: int = 5, class_names: Sequence[str] = CIFAR10_CLASSES) -> Path:
    """``images uint8 [N, 32, 32, 3]``, labels -> ``folder/cifar-10-batches-py/`` in the official format
    (Python 2 protocol-2 pickles with byte-string keys ``batch_label``, ``labels``, ``data [n, 3072]``,
    ``filenames``; ``batches.meta``). The train split is spread over ``n_batches`` files."""
    _check_split(split)
    out = Path(folder) / "cifar-10-batches-py"
    images = np.ascontiguousarray(images, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    names = [f"data_batch_{i}" for i in range(1, n_batches + 1)] if split == "train" else ["test_batch"]
    chunks = np.array_split(np.arange(len(images)), len(names))
    for i, (name, idx) in enumerate(zip(names, chunks)):
        desc = f"training batch {i + 1} of {len(names)}" if split == "train" else "testing batch 1 of 1"
        batch = {b"batch_label": desc.encode(), b"labels": [int(v) for v in labels[idx]],
                 b"data": images[idx].transpose(0, 3, 1, 2).reshape(len(idx), 3072),
                 b"filenames": [f"generated_{int(j):05d}.png".encode() for j in idx]}
        _write_file(out / name, _py2_dumps(batch))
    meta = {b"num_cases_per_batch": int(len(chunks[0])), b"label_names": [n.encode() for n in class_names],
            b"num_vis": 3072}
    _write_file(out / "batches.meta", _py2_dumps(meta))
    return out


# ---- generated stand-ins (for tests and the CPU quick start; never presented as real data) -----------------
def generated_images(n: int, size: int, channels: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` simple structured images (a class-dependent shape on a gradient) and labels 0..9.

    Class k draws a filled disc, a square or a bar (k % 3) at a position set by k, in a colour set by k,
    plus mild noise: enough structure that a few CPU minutes of training show recognisable samples.
    Returns ``uint8 [n, size, size]`` (channels 1) or ``[n, size, size, channels]``, ``int64 [n]``.
    """
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n).astype(np.int64)
    yy, xx = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    out = np.empty((n, size, size, channels), dtype=np.float64)
    for i, k in enumerate(labels):
        cy, cx = 0.3 + 0.4 * ((k // 3) % 2), 0.25 + 0.25 * (k % 3)
        cy, cx = cy + rng.normal(0, 0.03), cx + rng.normal(0, 0.03)
        r = 0.18 + 0.04 * rng.standard_normal()
        if k % 3 == 0:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 < r * r
        elif k % 3 == 1:
            mask = (abs(yy - cy) < r) & (abs(xx - cx) < r)
        else:
            mask = (abs(yy - cy) < r * 1.5) & (abs(xx - cx) < r * 0.4)
        colour = np.array([(k * 37 % 10) / 9, (k * 53 % 10) / 9, (k * 71 % 10) / 9])[:channels]
        background = (0.15 * yy)[..., None] if channels > 1 else 0.0
        img = np.where(mask[..., None], 0.3 + 0.7 * colour if channels > 1 else 1.0, background)
        out[i] = img + rng.normal(0, 0.03, img.shape)
    imgs = np.clip(out * 255, 0, 255).round().astype(np.uint8)
    return (imgs[..., 0] if channels == 1 else imgs), labels


# ---- tensors <-> images, PNG ---------------------------------------------------------------------------------
def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Model-space images ``[N, C, H, W]`` in [-1, 1] -> ``uint8 [N, H, W, C]`` (clipped, rounded)."""
    x = ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: np.ndarray, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """``uint8 [N, H, W(, C)]`` -> one ``[rows·(H+pad)+pad, cols·(W+pad)+pad, C]`` image, ``nrow`` per row."""
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4 or images.shape[0] == 0 or images.shape[-1] not in (1, 3):
        raise UserInputError(f"images must be uint8 [N, H, W, C] with N >= 1 and C in (1, 3), got {images.shape}")
    n, h, w, c = images.shape
    cols = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / cols)
    grid = np.zeros((rows * (h + pad) + pad, cols * (w + pad) + pad, c), dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[pad + r * (h + pad): pad + r * (h + pad) + h, pad + q * (w + pad): pad + q * (w + pad) + w] = images[i]
    return grid


def encode_png(image: np.ndarray) -> bytes:
    """``uint8 [H, W]`` or ``[H, W, 1|3|4]`` -> PNG bytes (8-bit grey / RGB / RGBA, no filtering)."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[..., None]
    if img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] not in (1, 3, 4) or 0 in img.shape:
        raise UserInputError(f"a PNG needs a non-empty uint8 [H, W, 1|3|4] image, got {img.dtype} {img.shape}")
    h, w, c = img.shape
    colour_type = {1: 0, 3: 2, 4: 6}[c]
    rows = np.concatenate([np.zeros((h, 1), np.uint8), img.reshape(h, w * c)], axis=1)  # filter byte 0 per row

    def chunk(tag: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, colour_type, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6)) + chunk(b"IEND", b""))


def save_grid(images: np.ndarray, path: str | Path, nrow: int | None = None) -> Path:
    """Write ``uint8 [N, H, W, C]`` as one PNG grid, atomically (a crash never leaves half a PNG)."""
    path = Path(path)
    return _write_file(path, encode_png(make_grid(images, nrow)))


# ---- the training set -----------------------------------------------------------------------------------------
class ImageDataset(Dataset):
    """Images for the shared trainer, indexed by ``(index, item_seed)`` (see training/sampler.py).

    Item: ``{"x": float32 [C, H, W] in [-1, 1], "label": int64, "label_u": float32 in [0, 1), "seed": int64}``,
    where ``label_u`` is a uniform draw from the item seed that the task compares to its label-dropout
    probability (so dropout is reproducible on resume and across processes), ``seed`` is the item seed
    (the task seeds the network's dropout masks from it), and the optional random
    horizontal flip (CIFAR-10; not MNIST, digits are not mirror-symmetric) comes from the same seed.
    ``pad_to`` zero-pads (value -1 after scaling) to a larger square, e.g. MNIST 28 -> 32.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, random_flip: bool = False, pad_to: int = 0):
        images = np.asarray(images)
        if images.ndim == 3:
            images = images[..., None]
        if images.ndim != 4 or images.dtype != np.uint8:
            raise UserInputError(f"images must be uint8 [N, H, W(, C)], got {images.dtype} {images.shape}")
        if len(labels) != len(images) or len(images) == 0:
            raise UserInputError(f"{len(images)} images but {len(labels)} labels")
        self.images = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2)  # [N, C, H, W] uint8 view
        self.labels = torch.as_tensor(np.asarray(labels), dtype=torch.int64)
        self.random_flip, self.pad_to = random_flip, pad_to

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, key: tuple[int, int]) -> dict[str, torch.Tensor]:
        i, seed = key
        g = torch.Generator().manual_seed(int(seed))
        x = self.images[i].float() / 127.5 - 1.0                                  # [C, H, W] in [-1, 1]
        if self.pad_to and self.pad_to > x.shape[-1]:
            p = self.pad_to - x.shape[-1]
            x = torch.nn.functional.pad(x, (p // 2, p - p // 2, p // 2, p - p // 2), value=-1.0)
        u = torch.rand(2, generator=g)
        if self.random_flip and u[0] < 0.5:
            x = x.flip(-1)
        return {"x": x.contiguous(), "label": self.labels[i], "label_u": u[1],
                "seed": torch.tensor(int(seed) % 2**62, dtype=torch.int64)}
