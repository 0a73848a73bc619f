"""Byte-level view of a tokenizer: prefix ranges, byte-prefix probabilities, incremental GFD.

Runs offline: the vocabulary is Whisper's multilingual.tiktoken (shipped by openai-whisper) and
the "language model" is a fixed random next-token distribution standing in for a real one.
"""

from __future__ import annotations

import os

import numpy as np

from stepfuse import ByteVocab, byte_prefix_logprob, gfd_prepare


def whisper_multilingual() -> ByteVocab:
    import tiktoken
    import whisper
    from tiktoken.load import load_tiktoken_bpe

    path = os.path.join(os.path.dirname(whisper.__file__), "assets", "multilingual.tiktoken")
    ranks = load_tiktoken_bpe(path)
    pat = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
    enc = tiktoken.Encoding(
        "multilingual", pat_str=pat, mergeable_ranks=ranks, special_tokens={"<|endoftext|>": len(ranks)}
    )
    return ByteVocab.from_tokenizer(enc)


def main() -> None:
    vocab = whisper_multilingual()
    print(vocab, f"index: {vocab.index_bytes / 1e6:.2f} MB")

    # Every token starting with " hel" is one contiguous slice of sorted_ids.
    lo, hi = vocab.prefix_range(b" hel")
    print("tokens extending b' hel':", [vocab.token_bytes(i) for i in vocab.sorted_ids[lo:hi][:8]], "...")
    print(
        "tokens that are prefixes of b' hello':", [vocab.token_bytes(i) for i in vocab.prefixes_of(b" hello")]
    )

    rng = np.random.default_rng(0)
    bias = rng.normal(size=len(vocab)).astype(np.float32)

    def next_logprobs(seqs: list[list[int]]) -> np.ndarray:
        x = np.stack([bias + 0.1 * (len(s) % 7) for s in seqs])
        return x - np.log(np.exp(x).sum(axis=1, keepdims=True))

    data = " héllo".encode()
    exact = byte_prefix_logprob(vocab, next_logprobs, data)
    gfd = byte_prefix_logprob(vocab, next_logprobs, data, mode="gfd")
    print(f"log P(bytes start with {data!r}): exact {exact:.4f}, gfd {gfd:.4f} (gfd <= exact)")

    # Incremental GFD for 2 beams: feed text chunk by chunk (as a recognizer would).
    contexts, trailing, running = [[50257 - 1], [50257 - 1]], [b"", b""], [0.0, 0.0]
    for chunk in [b" the", b" quick br", b"own fox"]:
        trailing = [t + chunk for t in trailing]
        step = gfd_prepare(vocab, contexts, trailing, window=8)  # keep <= 8 bytes untokenized
        scores = step.score(next_logprobs(step.inputs))  # one [R, V] batch for all beams
        for b in range(2):
            total = running[b] + scores.logprob[b]
            running[b] += scores.committed_logprob[b]
            print(f"beam {b}: trailing {trailing[b]!r} -> log P {total:.3f}; committed {step.committed[b]}")
        contexts, trailing = step.contexts, step.trailing


if __name__ == "__main__":
    main()
