"""Regenerate the fusion demo data: KJV verses (public domain) and espeak-ng clips of held-out verses.

Needs the Debian packages ``bible-kjv`` (reader) + ``bible-kjv-text`` and ``espeak-ng``; the committed outputs
(``kjv_train.txt.xz``, ``clips.npz``, ``transcripts.tsv``) let tests and the demo run without them.

Held-out verses: 8-18 words, text unique in the whole Bible (so no verbatim copy is in the LM's training text),
drawn with a fixed seed; the first 20 form the dev split (tuning), the next 40 the test split.
Clips: espeak-ng en-us at its default rate, resampled 22,050 -> 16,000 Hz, mono, stored 8-bit mu-law (mu = 255) in an
uncompressed .npz wrapped in xz (``clips.npz.xz``, ~2.3 MB for 60 clips); ``stepfuse.fusion.data.load_clips`` decodes.
"""

from __future__ import annotations

import io
import lzma
import random
import re
import subprocess
import tempfile
import wave
from collections import Counter
from pathlib import Path

import numpy as np
from scipy.signal import resample_poly

HERE = Path(__file__).resolve().parent
N_DEV, N_TEST = 20, 40


def verses() -> list[tuple[str, str]]:
    out = subprocess.run(["bible", "-l100000", "Gen1:1-Rev22:21"], capture_output=True, text=True, check=True)
    res: list[tuple[str, str]] = []
    chapter = ""
    for line in out.stdout.splitlines():
        m = re.match(r"^\s+(\d+) (.*)$", line)
        if m:
            res.append((f"{chapter}:{m.group(1)}", m.group(2).strip()))
        elif line.strip():
            chapter = line.strip()
    return res


def synth(text: str) -> np.ndarray:
    with tempfile.NamedTemporaryFile(suffix=".wav") as f:
        subprocess.run(["espeak-ng", "-v", "en-us", "-w", f.name, text], check=True)
        with wave.open(f.name) as w:
            sr = w.getframerate()
            x = np.frombuffer(w.readframes(w.getnframes()), dtype=np.int16).astype(np.float64)
    assert sr == 22050, sr
    y = resample_poly(x, 320, 441)
    x = np.clip(y / 32768.0, -1.0, 1.0)
    mu = 255.0
    c = np.sign(x) * np.log1p(mu * np.abs(x)) / np.log1p(mu)
    return np.round((c + 1.0) / 2.0 * 255.0).astype(np.uint8)


def main() -> None:
    vs = verses()
    counts = Counter(t for _, t in vs)
    pool = [i for i, (_, t) in enumerate(vs) if counts[t] == 1 and 8 <= len(t.split()) <= 18]
    rng = random.Random(20240601)
    held = rng.sample(pool, N_DEV + N_TEST)
    held_set = set(held)
    train = "\n".join(t for i, (_, t) in enumerate(vs) if i not in held_set) + "\n"
    (HERE / "kjv_train.txt.xz").write_bytes(lzma.compress(train.encode(), preset=9 | lzma.PRESET_EXTREME))
    arrays = {}
    rows = ["id\tsplit\tref\ttext"]
    for k, i in enumerate(held):
        ref, text = vs[i]
        split = "dev" if k < N_DEV else "test"
        key = f"{split}_{k:02d}"
        arrays[key] = synth(text)
        rows.append(f"{key}\t{split}\t{ref}\t{text}")
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    (HERE / "clips.npz.xz").write_bytes(lzma.compress(buf.getvalue(), preset=9 | lzma.PRESET_EXTREME))
    (HERE / "transcripts.tsv").write_text("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
