"""Train a KenLM-compatible 3-gram model on whitespace-tokenized text, query it, save it as ARPA and binary.

Usage: python examples/ngram_lm.py [TEXT_FILE]   (default: the text of CPython's pydoc topics)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

from stepfuse.ngram import NGramIndex, NGramLM, NoRepeatNGram


def main() -> None:
    if len(sys.argv) > 1:
        lines = Path(sys.argv[1]).read_text(encoding="utf-8").splitlines()
    else:
        import pydoc_data.topics as topics

        lines = [" ".join(x.split()) for t in topics.topics.values() for x in t.splitlines() if x.strip()]
    lm = NGramLM.train(lines, 3)  # modified Kneser-Ney, as `lmplz -o 3`
    print(lm)
    print("log p(statement | The) =", lm.logprob("The", "statement"))
    print("perplexity of the first 100 lines:", round(lm.perplexity(lines[:100]), 2))
    ctx = [lm.encode("<s> The"), lm.encode("the")]
    best = np.argsort(-lm.next_logprobs(ctx), axis=1)[:, :5]
    for c, row in zip(["<s> The", "the"], best):
        print(f"after {c!r}:", [lm.words[i] for i in row] if lm.words else row)
    with tempfile.TemporaryDirectory() as d:
        lm.write_arpa(Path(d) / "model.arpa")
        lm.save(Path(d) / "model.bin")
        back = NGramLM.load(Path(d) / "model.bin")  # memory-mapped
        print("binary bytes per n-gram:", round((Path(d) / "model.bin").stat().st_size / lm.num_ngrams(), 2))
        assert back.logprob("The", "statement") == lm.logprob("The", "statement")
    # no-repeat blocking for one sequence over this vocabulary
    block = NoRepeatNGram(2, prompts=[lm.encode("the value of the")])
    logits = np.zeros((1, lm.vocab_size), np.float32)
    block.apply(logits)
    print("banned after 'the value of the':", [lm.words[i] for i in np.flatnonzero(np.isinf(logits[0]))])
    # decontamination: which lines share a 13-gram with the first 50
    index = NGramIndex.build(lines[:50], n=13)
    hits = [r.index for r in index.scan(lines[:200]) if r.overlap]
    print("of the first 200 lines, sharing a 13-gram with the first 50:", len(hits))


if __name__ == "__main__":
    main()
