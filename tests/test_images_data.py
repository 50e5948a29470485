"""MNIST (IDX) and CIFAR-10 (python pickle) readers on files in the exact official formats, their
failure modes, the restricted unpickler, PNG grids and the training-set items."""
import gzip
import io
import os
import pickle
import struct
import zlib

import numpy as np
import pytest

from wavegrad.data.images import (ImageDataset, cifar10_class_names, encode_png, generated_images, make_grid,
                                  read_cifar10, read_mnist, save_grid, write_cifar10, write_mnist)
from wavegrad.errors import UserInputError


def _idx(magic, arr):
    arr = np.asarray(arr, dtype=np.uint8)
    return struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.tobytes()


def _mnist_by_hand(folder, n=5, gz=False, prefix="train"):
    rng = np.random.default_rng(0)
    imgs, labels = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), rng.integers(0, 10, n).astype(np.uint8)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in ((f"{prefix}-images-idx3-ubyte", _idx(0x00000803, imgs)),
                       (f"{prefix}-labels-idx1-ubyte", _idx(0x00000801, labels))):
        (folder / (name + ".gz" if gz else name)).write_bytes(gzip.compress(data) if gz else data)
    return imgs, labels


@pytest.mark.parametrize("gz", [False, True])
def test_mnist_reads_hand_written_idx_files(tmp_path, gz):
    imgs, labels = _mnist_by_hand(tmp_path, gz=gz)
    _mnist_by_hand(tmp_path, n=3, gz=gz, prefix="t10k")
    x, y = read_mnist(tmp_path)
    assert x.dtype == np.uint8 and x.shape == (5, 28, 28) and y.dtype == np.int64
    np.testing.assert_array_equal(x, imgs)
    np.testing.assert_array_equal(y, labels)
    assert read_mnist(tmp_path, split="test")[0].shape == (3, 28, 28)


def test_mnist_writer_is_byte_exact_and_torchvision_layout_is_found(tmp_path):
    imgs, labels = generated_images(4, 28, 1)
    write_mnist(tmp_path / "MNIST" / "raw", imgs, labels)
    raw = (tmp_path / "MNIST" / "raw" / "train-images-idx3-ubyte").read_bytes()
    assert raw[:16] == bytes.fromhex("00000803 00000004 0000001c 0000001c") and len(raw) == 16 + 4 * 784
    assert (tmp_path / "MNIST" / "raw" / "train-labels-idx1-ubyte").read_bytes()[:8] == bytes.fromhex("00000801 00000004")
    x, y = read_mnist(tmp_path)
    np.testing.assert_array_equal(x, imgs)
    np.testing.assert_array_equal(y, labels)


@pytest.mark.parametrize("corrupt, msg", [
    (lambda b: b"\x00\x00\x08\x01" + b[4:], "magic"),                        # labels magic in the image file
    (lambda b: b[:-100], "truncated"),                                       # short data
    (lambda b: b + b"\x00", "truncated or corrupted"),                      # trailing bytes
    (lambda b: b[:10], "shorter than an IDX header"),
    (lambda b: gzip.compress(b), "magic"),                                   # gzipped but no .gz suffix
])
def test_mnist_corrupted_files_name_the_file(tmp_path, corrupt, msg):
    _mnist_by_hand(tmp_path)
    p = tmp_path / "train-images-idx3-ubyte"
    p.write_bytes(corrupt(p.read_bytes()))
    with pytest.raises(UserInputError, match=msg) as e:
        read_mnist(tmp_path)
    assert "train-images-idx3-ubyte" in str(e.value) and "\n" not in str(e.value)


def test_mnist_other_failures(tmp_path):
    with pytest.raises(UserInputError, match="data_prep/images.py download mnist"):
        read_mnist(tmp_path / "nope")
    with pytest.raises(UserInputError, match="no train-images-idx3-ubyte"):
        read_mnist(tmp_path)
    _mnist_by_hand(tmp_path, gz=True)
    p = tmp_path / "train-labels-idx1-ubyte.gz"
    p.write_bytes(p.read_bytes()[:20])
    with pytest.raises(UserInputError, match="gzip"):
        read_mnist(tmp_path)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(_idx(0x00000801, [1, 2])))
    with pytest.raises(UserInputError, match="2 labels but"):
        read_mnist(tmp_path)
    with pytest.raises(UserInputError, match="split"):
        read_mnist(tmp_path, split="val")


# ---- CIFAR-10 ----------------------------------------------------------------------------------------------------
def _cifar(tmp_path, n=20):
    imgs, labels = generated_images(n, 32, 3)
    write_cifar10(tmp_path, imgs, labels)
    write_cifar10(tmp_path, imgs[:4], labels[:4], split="test")
    return imgs, labels, tmp_path / "cifar-10-batches-py"


def test_cifar10_round_trip_in_the_official_layout(tmp_path):
    imgs, labels, d = _cifar(tmp_path)
    raw = (d / "data_batch_1").read_bytes()
    assert raw.startswith(b"\x80\x02}q\x00(U\x0bbatch_label")  # Python 2 protocol 2, byte-string keys
    assert b"cnumpy.core.multiarray\n_reconstruct\n" in raw
    batch = pickle.loads(raw, encoding="bytes")  # what the official loading snippet does
    assert list(batch) == [b"batch_label", b"labels", b"data", b"filenames"] and batch[b"data"].shape == (4, 3072)
    for folder in (tmp_path, d):  # the extracted archive's folder or the batches folder itself
        x, y = read_cifar10(folder)
        assert x.shape == (20, 32, 32, 3) and x.dtype == np.uint8 and y.dtype == np.int64
        np.testing.assert_array_equal(x, imgs)
        np.testing.assert_array_equal(y, labels)
    assert read_cifar10(tmp_path, "test")[0].shape == (4, 32, 32, 3)
    assert cifar10_class_names(tmp_path)[0] == "airplane"
    # channel-major rows: the first 1024 bytes of a row are the red plane
    np.testing.assert_array_equal(batch[b"data"][0, :1024].reshape(32, 32), imgs[0, :, :, 0])


@pytest.mark.parametrize("protocol", [2, 4])
def test_cifar10_python3_repickles_load_too(tmp_path, protocol):
    imgs, labels, d = _cifar(tmp_path)
    batch = pickle.loads((d / "data_batch_2").read_bytes(), encoding="bytes")
    (d / "data_batch_2").write_bytes(pickle.dumps(batch, protocol=protocol))
    np.testing.assert_array_equal(read_cifar10(tmp_path)[0], imgs)


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def test_malicious_cifar_pickle_is_refused_without_running(tmp_path):
    _, _, d = _cifar(tmp_path)
    marker = tmp_path / "pwned"
    (d / "data_batch_3").write_bytes(pickle.dumps({b"data": _Evil(marker), b"labels": []}, protocol=2))
    with pytest.raises(UserInputError, match="refused") as e:
        read_cifar10(tmp_path)
    assert not marker.exists()
    assert "data_batch_3" in str(e.value) and ("posix.system" in str(e.value) or "os.system" in str(e.value))
    # other smuggling routes: builtins via GLOBAL, a codec other than latin1
    (d / "data_batch_3").write_bytes(b"\x80\x02cbuiltins\neval\nq\x00X\x01\x00\x00\x001\x85R.")
    with pytest.raises(UserInputError, match="builtins.eval"):
        read_cifar10(tmp_path)
    (d / "data_batch_3").write_bytes(b"\x80\x02c_codecs\nencode\nX\x01\x00\x00\x00xX\x04\x00\x00\x00zlib\x86R.")
    with pytest.raises(UserInputError, match="refused"):
        read_cifar10(tmp_path)


@pytest.mark.parametrize("mutate, msg", [
    (lambda p: p.write_bytes(p.read_bytes()[:500]), "truncated"),
    (lambda p: p.unlink(), "missing CIFAR-10 batch"),
    (lambda p: p.write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]})), r"\[N, 3072\]"),
    (lambda p: p.write_bytes(pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]})), "1 labels for 2"),
    (lambda p: p.write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"fine_labels": [0]})), "CIFAR-100"),
    (lambda p: p.write_bytes(pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [12]})), "0..9"),
    (lambda p: p.write_bytes(pickle.dumps([1, 2])), "dict"),
    (lambda p: p.write_bytes(b"not a pickle at all"), "not a readable CIFAR-10 pickle"),
])
def test_cifar10_corrupted_batches_name_the_file(tmp_path, mutate, msg):
    _, _, d = _cifar(tmp_path)
    mutate(d / "data_batch_4")
    with pytest.raises(UserInputError, match=msg) as e:
        read_cifar10(tmp_path)
    assert "data_batch_4" in str(e.value) and "\n" not in str(e.value)


def test_cifar10_missing_folder_and_unextracted_archive(tmp_path):
    with pytest.raises(UserInputError, match="data_prep/images.py download cifar10"):
        read_cifar10(tmp_path / "nope")
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(b"x")
    with pytest.raises(UserInputError, match="extract the archive"):
        read_cifar10(tmp_path)


# ---- PNG grids and dataset items ---------------------------------------------------------------------------------
def _decode_png(data):
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, {}
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos:pos + 4])
        tag, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + n]
        assert struct.unpack(">I", data[pos + 8 + n:pos + 12 + n])[0] == zlib.crc32(tag + body)
        chunks[tag] = chunks.get(tag, b"") + body
        pos += 12 + n
    w, h, depth, ctype = struct.unpack(">IIBB", chunks[b"IHDR"][:10])
    c = {0: 1, 2: 3}[ctype]
    rows = np.frombuffer(zlib.decompress(chunks[b"IDAT"]), np.uint8).reshape(h, 1 + w * c)
    assert (rows[:, 0] == 0).all()
    return rows[:, 1:].reshape(h, w, c)


@pytest.mark.parametrize("c", [1, 3])
def test_png_grid_round_trip(tmp_path, c):
    imgs = np.random.default_rng(0).integers(0, 256, (5, 7, 6, c), dtype=np.uint8)
    path = save_grid(imgs, tmp_path / "g.png", nrow=3)
    got = _decode_png(path.read_bytes())
    np.testing.assert_array_equal(got, make_grid(imgs, nrow=3))
    assert got.shape == (2 * 9 + 2, 3 * 8 + 2, c)
    np.testing.assert_array_equal(got[2:9, 2:8], imgs[0])
    np.testing.assert_array_equal(got[11:18, 10:16], imgs[4])
    assert [p.name for p in tmp_path.iterdir()] == ["g.png"]
    try:
        from PIL import Image
    except ImportError:
        return
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(path.read_bytes()))).reshape(got.shape), got)


def test_png_rejects_bad_arrays():
    with pytest.raises(UserInputError):
        encode_png(np.zeros((4, 4, 2), np.uint8))
    with pytest.raises(UserInputError):
        make_grid(np.zeros((0, 4, 4, 3), np.uint8))


def test_dataset_items_are_scaled_and_seeded(tmp_path):
    imgs, labels = generated_images(6, 32, 3)
    ds = ImageDataset(imgs, labels, random_flip=True)
    it = ds[(2, 123)]
    assert it["x"].shape == (3, 32, 32) and it["x"].dtype.is_floating_point and it["x"].abs().max() <= 1
    assert int(it["label"]) == labels[2] and 0 <= float(it["label_u"]) < 1
    again = ds[(2, 123)]
    assert (again["x"] == it["x"]).all() and again["label_u"] == it["label_u"]
    flipped = [bool((ds[(2, s)]["x"] == ds[(2, 123)]["x"].flip(-1)).all()) for s in range(40)]
    assert 5 < sum(flipped) < 35  # about half of the seeds flip
    base = ((np.transpose(imgs[2], (2, 0, 1)) / 127.5) - 1).astype(np.float32)
    assert np.allclose(it["x"].numpy(), base) or np.allclose(it["x"].numpy(), base[..., ::-1])
    m, ml = generated_images(3, 28, 1)
    padded = ImageDataset(m, ml, pad_to=32)[(0, 0)]["x"]
    assert padded.shape == (1, 32, 32) and (padded[:, :2] == -1).all()
