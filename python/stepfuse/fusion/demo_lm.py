"""The demo's LM: a byte-level BPE tokenizer (``tokenizers``) and an n-gram LM (``stepfuse.ngram``) trained on text.

The tokenizer differs from Whisper's on purpose (its own merges and vocabulary size); sentences are prefixed
with a space, as Whisper's text is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stepfuse.errors import require

__all__ = ["train_bpe", "train_ngram_lm"]


def train_bpe(sentences: Sequence[str], vocab_size: int = 4000) -> Any:
    """Train a byte-level BPE ``tokenizers.Tokenizer`` (GPT-2 style pre-tokenization) on ``sentences``."""
    tk: Any = require("tokenizers", "hf")
    tok = tk.Tokenizer(tk.models.BPE())
    tok.pre_tokenizer = tk.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tk.decoders.ByteLevel()
    trainer = tk.trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=tk.pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([" " + s for s in sentences], trainer=trainer)
    return tok


def train_ngram_lm(sentences: Sequence[str], order: int = 4, vocab_size: int = 4000) -> tuple[Any, Any]:
    """(tokenizer, NGramLM): BPE on ``sentences`` then a modified Kneser-Ney ``order``-gram over its ids."""
    from stepfuse.ngram import NGramLM

    tok = train_bpe(sentences, vocab_size)
    enc = tok.encode_batch([" " + s for s in sentences], add_special_tokens=False)
    ids = [np.asarray(e.ids, dtype=np.int64) for e in enc]
    lm = NGramLM.train(ids, order, vocab_size=tok.get_vocab_size())
    return tok, lm
