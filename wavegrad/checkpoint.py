"""Self-describing checkpoints: atomic writes, safe loads (``weights_only=True``), a format version.

A checkpoint is a plain dict of tensors, numbers, strings, lists and dicts, so that
``torch.load(weights_only=True)`` can read it and a pickle carrying code is refused, never run.
Training writes them (:mod:`wavegrad.training.trainer`), inference reads them (:mod:`wavegrad.vocoder`,
:mod:`wavegrad.images`): the module sits below both.
"""
from __future__ import annotations

import pickle
import re
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import torch

from .errors import UserInputError
from .utils import atomic_path

FORMAT = "wavegrad-checkpoint"
VERSION = 1
_NAME = re.compile(r"^step-(\d{8,})\.pt$")


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> Path:
    """Write ``payload`` (plus format and version) atomically: a crash leaves the old file intact."""
    path = Path(path)
    # through a file object: torch.save names the zip's records after a *path* it is given (here the
    # random temporary name), which would make equal checkpoints differ byte for byte
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save({"format": FORMAT, "version": VERSION, **payload}, f)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and validate a checkpoint; every failure is a one-line ``UserInputError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise UserInputError(f"{path}: no such checkpoint file (check the path)")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else ""
        if "weights_only" in str(e) or "Unsupported global" in str(e):
            raise UserInputError(f"{path}: refused: the file contains pickled code or objects, not just "
                                 f"tensors (a foreign or unsafe checkpoint); only wavegrad checkpoints load") from None
        raise UserInputError(f"{path}: not a readable checkpoint ({first[:120]}); is it truncated?") from None
    except Exception as e:  # noqa: BLE001 - torch raises many types (KeyError on text files, RuntimeError…)
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserInputError(f"{path}: not a readable checkpoint ({first[:120]}); "
                             f"is it truncated or not a torch file?") from None
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise UserInputError(f"{path}: not a wavegrad checkpoint (no '{FORMAT}' marker); "
                             f"train one with `wavegrad train` or a recipe")
    if ckpt.get("version") != VERSION:
        raise UserInputError(f"{path}: checkpoint format version {ckpt.get('version')} is not supported "
                             f"by this wavegrad (expects {VERSION}); upgrade wavegrad or re-export")
    return ckpt


def load_family_checkpoint(path: str | Path, family: str, kind: str, hint: str = "") -> dict[str, Any]:
    """:func:`load_checkpoint`, then refuse checkpoints of another ``family``; ``kind`` names the wanted
    one in the message ("a vocoder", "an image")."""
    ckpt = load_checkpoint(path)
    if ckpt.get("family") != family:
        raise UserInputError(f"{path}: this is a {ckpt.get('family')!r} checkpoint, not {kind} one{hint}")
    return ckpt


def load(path: str | Path, family: str, kind: str, *, use_ema: bool = True,
         hint: str = "") -> tuple[dict[str, Any], dict[str, torch.Tensor], Path]:
    """(entries, weights, the file or folder read) of a ``family`` model from a checkpoint file, a run folder (its
    newest checkpoint) or an export folder (``model.safetensors`` + ``config.json``); the EMA weights of a
    checkpoint unless ``use_ema`` is False. ``kind`` names the family in messages ("a vocoder")."""
    if is_pretrained_folder(path):
        weights, config = load_pretrained_folder(path)
        if config.get("family", family) != family:
            raise UserInputError(f"{path}: this is a {config.get('family')!r} export, not {kind} one{hint}")
        return config, weights, Path(path)
    path = find_checkpoint(path)
    ckpt = load_family_checkpoint(path, family, kind, hint)
    with rebuilding_from(path, family, "re-export it with this wavegrad"):
        weights = ckpt["ema"]["shadow"] if use_ema else ckpt["model"]
    return ckpt, weights, path


@contextmanager
def rebuilding_from(path: str | Path, kind: str, fix: str) -> Iterator[None]:
    """Turn the errors of rebuilding configs, models and schedules from a loaded checkpoint (missing keys,
    shape mismatches, invalid values) into one line naming the file, ``kind`` and the ``fix``."""
    try:
        yield
    except UserInputError as e:
        raise UserInputError(f"{path}: {e}") from None
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as e:
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else ""
        raise UserInputError(f"{path}: a damaged or incompatible {kind} checkpoint ({type(e).__name__}: "
                             f"{first}); {fix}") from None


def check_resumable(ckpt: dict[str, Any], path: str | Path, identity: dict[str, Any],
                    legacy: dict[str, Any] | None = None, configs: dict[str, type] | None = None) -> None:
    """Refuse to resume from a checkpoint whose ``identity`` entries (family, model config, mel config,
    dataset, ...) differ from this run's, naming the first that differs. ``legacy``: the value an entry had
    before checkpoints recorded it (e.g. the architecture of checkpoints from before DiffWave). ``configs``:
    the dataclass of a stored config entry; it is read through that class first, so a field added since the
    checkpoint was written compares as its default instead of as a difference."""
    for key, want in identity.items():
        have = ckpt.get(key, (legacy or {}).get(key))
        if key in (configs or {}) and isinstance(have, dict):
            try:
                have = configs[key].from_dict(have).to_dict()
            except UserInputError:               # another architecture's fields: a real difference, shown raw
                pass
        if have != want:
            raise UserInputError(f"{path}: cannot resume: its {key} ({_short(have)}) differs from this run's "
                                 f"({_short(want)}); use a new --run-dir or the same settings")


def _short(value: Any, n: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= n else text[: n - 3] + "..."


def checkpoint_name(step: int) -> str:
    return f"step-{step:08d}.pt"


def find_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or the newest ``step-*.pt`` of a run folder (``RUN_DIR`` or ``RUN_DIR/checkpoints``)."""
    path = Path(path)
    if not path.is_dir():
        return path
    for folder in (path / "checkpoints", path):
        found = list_checkpoints(folder)
        if found:
            return found[-1]
    raise UserInputError(f"{path} is a folder without checkpoints (step-*.pt in it or in its checkpoints/); "
                         "give a checkpoint file or a run folder")


def list_checkpoints(folder: str | Path) -> list[Path]:
    """Checkpoints in ``folder`` sorted by step (oldest first)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def prune_checkpoints(folder: str | Path, keep_last: int) -> None:
    """Delete all but the newest ``keep_last`` checkpoints (0 keeps everything)."""
    if keep_last > 0:
        for p in list_checkpoints(folder)[:-keep_last]:
            p.unlink(missing_ok=True)


# ---- exported weights: safetensors + JSON (no pickle at all) ---------------------------------------------------
def hub_download(repo_id: str) -> Path:
    """A Hub repository's export files (only on an explicit ``from_pretrained`` of an id that is not a local path)."""
    if repo_id.count("/") != 1 or repo_id.startswith((".", "/")):
        raise UserInputError(f"{repo_id}: no such folder, and not a Hub repository id (user/name)")
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise UserInputError(f"{repo_id} is not a local folder; loading from the Hugging Face Hub needs "
                             "huggingface_hub: pip install wavegrad[hub]") from None
    try:
        return Path(snapshot_download(repo_id, allow_patterns=[WEIGHTS_NAME, CONFIG_NAME]))
    except Exception as e:  # noqa: BLE001 - network, authentication, missing repository: one line each
        raise UserInputError(f"cannot fetch {repo_id} from the Hugging Face Hub ({type(e).__name__}: "
                             f"{str(e).splitlines()[0][:120] if str(e) else ''})") from None



PRETRAINED_FORMAT = "wavegrad-pretrained"
WEIGHTS_NAME, CONFIG_NAME = "model.safetensors", "config.json"


def is_pretrained_folder(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / WEIGHTS_NAME).is_file() and (path / CONFIG_NAME).is_file()


def save_pretrained_folder(folder: str | Path, weights: dict[str, torch.Tensor], config: dict[str, Any]) -> Path:
    """``folder/model.safetensors`` and ``folder/config.json``, each written atomically."""
    import json

    from safetensors.torch import save_file
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in weights.items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": PRETRAINED_FORMAT})
    with atomic_path(folder / CONFIG_NAME) as tmp:
        tmp.write_text(json.dumps({"format": PRETRAINED_FORMAT, "version": VERSION, **config}, indent=2) + "\n")
    return folder


def load_pretrained_folder(folder: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(weights, config) of a folder written by :func:`save_pretrained_folder`; one-line errors naming the file."""
    import json

    from safetensors import SafetensorError
    from safetensors.torch import load_file
    folder = Path(folder)
    if not is_pretrained_folder(folder):
        raise UserInputError(f"{folder}: not a pretrained folder (needs {WEIGHTS_NAME} and {CONFIG_NAME}); "
                             "make one with `wavegrad export CHECKPOINT OUT_DIR`")
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, ValueError) as e:
        raise UserInputError(f"{folder / CONFIG_NAME}: not readable JSON ({str(e).splitlines()[0][:100]})") from None
    if not isinstance(config, dict) or config.get("format") != PRETRAINED_FORMAT:
        raise UserInputError(f"{folder / CONFIG_NAME}: not a wavegrad export (no '{PRETRAINED_FORMAT}' format)")
    if config.get("version") != VERSION:
        raise UserInputError(f"{folder / CONFIG_NAME}: export version {config.get('version')} is not supported by "
                             f"this wavegrad (expects {VERSION})")
    try:
        weights = load_file(str(folder / WEIGHTS_NAME))
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise UserInputError(f"{folder / WEIGHTS_NAME}: damaged safetensors file ({str(e).splitlines()[0][:100]}); "
                             "export it again") from None
    return weights, config
