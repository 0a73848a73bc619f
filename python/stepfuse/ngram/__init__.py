"""stepfuse.ngram: KenLM-compatible n-gram language models, no-repeat blocking, decontamination.

Counting, modified Kneser–Ney estimation, ARPA I/O and batched scoring run in the Rust core
(``stepfuse._core``) with the GIL released. Id conventions are documented on :class:`NGramLM`.
"""

from __future__ import annotations

from stepfuse.ngram._lm import NGramCounts, NGramLM

__all__ = ["NGramCounts", "NGramLM"]
