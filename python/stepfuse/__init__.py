"""stepfuse: step-by-step decoding with language models.

Byte-level token mapping and Generative Fusion Decoding across tokenizers, test-time search over
reasoning steps, Superposed Decoding, a KenLM-compatible n-gram engine and text-to-pattern Hamming
distances, on a Rust core. ``import stepfuse`` needs numpy only; torch and transformers are imported
lazily by the parts that use them.
"""

from __future__ import annotations

from stepfuse import errors
from stepfuse._core import __version__
from stepfuse.errors import *
from stepfuse.ngram import *
from stepfuse.search import *
from stepfuse.strings import *
from stepfuse.vocab import *

from stepfuse import ngram as _ngram  # isort: skip
from stepfuse import search as _search  # isort: skip
from stepfuse import strings as _strings  # isort: skip
from stepfuse import vocab as _vocab  # isort: skip

__all__ = [
    "__version__",
    "errors",
    *errors.__all__,
    *_vocab.__all__,
    *_ngram.__all__,
    *_strings.__all__,
    *_search.__all__,
]
