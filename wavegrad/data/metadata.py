"""The metadata of an LJSpeech-layout corpus, and the :class:`Problem` record every corpus check reports.

Layout (LJSpeech-1.1 and anything shaped like it)::

    DATA_DIR/metadata.csv        ID|transcription|normalized transcription   (UTF-8, no header)
    DATA_DIR/wavs/ID.wav         mono 16-bit PCM at the corpus rate (LJSpeech: 22050 Hz)

``metadata.csv`` is read as plain ``|``-separated lines, never through a CSV parser with quoting:
LJSpeech's transcriptions contain unbalanced double quotes (e.g. LJ001-0045) that a quoting parser
would swallow across lines. LJSpeech's own text never contains ``|``, so a row with other than
three fields is malformed.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserInputError

METADATA = "metadata.csv"


@dataclass(frozen=True)
class Utterance:
    """One metadata row. ``line`` is its 1-based line number in metadata.csv (for error messages)."""

    id: str
    text: str
    normalized_text: str
    line: int

    def wav_path(self, data_dir: str | os.PathLike) -> Path:
        return Path(data_dir) / "wavs" / f"{self.id}.wav"


@dataclass(frozen=True)
class Problem:
    """Something wrong with a corpus: which file, what is wrong, how to fix it.

    ``severity`` is ``"error"`` (the folder cannot be used as is) or ``"warning"``.
    """

    file: str
    problem: str
    fix: str
    severity: str = "error"

    def __str__(self) -> str:
        return f"{self.severity.upper()} {self.file}: {self.problem}; fix: {self.fix}"


def metadata_path(data_dir: str | os.PathLike) -> Path:
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise UserInputError(f"data folder not found: {data_dir}; pass the folder that holds "
                             "metadata.csv and wavs/ (e.g. LJSpeech-1.1)")
    path = data_dir / METADATA
    if not path.is_file():
        raise UserInputError(f"{path} not found; an LJSpeech-layout folder needs metadata.csv "
                             "(ID|transcription|normalized transcription) next to wavs/")
    return path


def parse_metadata(path: Path) -> tuple[list[Utterance], list[Problem]]:
    """Parse every row; collect malformed rows, bad ids and duplicates as problems."""
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as exc:
        return [], [Problem(str(path), f"not UTF-8 text (byte {exc.start})", "re-save it as UTF-8")]
    utts, problems, seen = [], [], {}
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue                                              # blank lines (e.g. a trailing one)
        fields = line.split("|")
        where = f"{path} line {n}"
        if len(fields) != 3:
            problems.append(Problem(where, f"expected 3 '|'-separated fields (ID|transcription|normalized "
                                           f"transcription), found {len(fields)}",
                                    "fix or delete the row ('|' may not appear inside a transcription)"))
            continue
        uid = fields[0].strip()
        if not uid or "/" in uid or "\\" in uid or uid.startswith("."):
            problems.append(Problem(where, f"invalid id {uid!r}",
                                    "use the wav's file name without .wav (no slashes, not starting with '.')"))
            continue
        if uid in seen:
            problems.append(Problem(where, f"duplicate id {uid} (first on line {seen[uid]})",
                                    "give each clip a unique id or delete the repeated row"))
            continue
        seen[uid] = n
        utts.append(Utterance(uid, fields[1], fields[2], n))
    if not utts and not problems:
        problems.append(Problem(str(path), "no rows", "list the clips as ID|transcription|normalized transcription"))
    return utts, problems


def read_metadata(data_dir: str | os.PathLike) -> list[Utterance]:
    """Rows of ``DATA_DIR/metadata.csv`` in file order.

    Raises :class:`UserInputError` naming the first bad line (malformed row, bad or duplicate id)
    and how many more there are; ``check_corpus`` lists them all.
    """
    utts, problems = parse_metadata(metadata_path(data_dir))
    if problems:
        more = f" ({len(problems) - 1} more problem(s); run `python data_prep/ljspeech.py check " \
               f"{data_dir}` for the full list)" if len(problems) > 1 else ""
        p = problems[0]
        raise UserInputError(f"{p.file}: {p.problem}; {p.fix}{more}")
    return utts
