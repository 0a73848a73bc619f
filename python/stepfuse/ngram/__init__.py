"""stepfuse.ngram: KenLM-compatible n-gram language models, no-repeat blocking, decontamination.

Counting, modified Kneser–Ney estimation, ARPA I/O and batched scoring run in the Rust core
(``stepfuse._core``) with the GIL released. Id conventions are documented on :class:`NGramLM`.
"""

from __future__ import annotations

from typing import Any

from stepfuse.ngram._index import DocReport, NGramIndex
from stepfuse.ngram._index import decontaminate_main as decontaminate_main  # the CLI entry point
from stepfuse.ngram._lm import NGramCounts, NGramLM
from stepfuse.ngram._norepeat import NoRepeatNGram

__all__ = ["DocReport", "NGramCounts", "NGramIndex", "NGramLM", "NoRepeatNGram"]


def __getattr__(name: str) -> Any:
    # The transformers processor imports torch/transformers, so it is loaded on first access only.
    if name == "NoRepeatNGramLogitsProcessor":
        from stepfuse.ngram.hf import NoRepeatNGramLogitsProcessor

        return NoRepeatNGramLogitsProcessor
    raise AttributeError(f"module 'stepfuse.ngram' has no attribute {name!r}")
