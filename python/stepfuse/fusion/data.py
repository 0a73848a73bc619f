"""The demo data set: espeak-ng clips of held-out KJV verses, their transcripts, and the LM training text.

The files live in a source checkout under ``tests/data/fusion/`` (see ``make_data.py`` there for how they were
made); pass ``root`` to use another copy.
"""

from __future__ import annotations

import io
import lzma
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stepfuse.errors import StepfuseIOError

__all__ = ["Clip", "data_dir", "load_clips", "load_train_text", "mulaw_decode"]


@dataclass(frozen=True)
class Clip:
    """One utterance: id, split ("dev" or "test"), verse reference, transcript, 16 kHz float32 audio."""

    id: str
    split: str
    ref: str
    text: str
    audio: np.ndarray


def data_dir(root: str | Path | None = None) -> Path:
    """The demo data directory (``root`` if given, else ``tests/data/fusion`` of the source checkout)."""
    if root is not None:
        p = Path(root)
    else:
        p = Path(__file__).resolve().parents[3] / "tests" / "data" / "fusion"
    if not (p / "transcripts.tsv").exists():
        raise StepfuseIOError(
            f"root: no demo data at {p} (the demo data ships with a source checkout; pass --data DIR)"
        )
    return p


def mulaw_decode(q: np.ndarray, mu: float = 255.0) -> np.ndarray:
    """8-bit mu-law codes (uint8) -> float32 samples in [-1, 1]."""
    c = q.astype(np.float64) / 255.0 * 2.0 - 1.0
    return (np.sign(c) * np.expm1(np.abs(c) * np.log1p(mu)) / mu).astype(np.float32)


def load_clips(root: str | Path | None = None, split: str | None = None) -> list[Clip]:
    """All clips (or those of ``split``), in file order."""
    d = data_dir(root)
    arrays = np.load(io.BytesIO(lzma.decompress((d / "clips.npz.xz").read_bytes())))
    out = []
    for line in (d / "transcripts.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        cid, sp, ref, text = line.split("\t")
        if split is None or sp == split:
            out.append(Clip(cid, sp, ref, text, mulaw_decode(arrays[cid])))
    return out


def load_train_text(root: str | Path | None = None) -> list[str]:
    """The LM training verses (every verse not held out), one string per verse."""
    d = data_dir(root)
    return lzma.decompress((d / "kjv_train.txt.xz").read_bytes()).decode("utf-8").splitlines()
