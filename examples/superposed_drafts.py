"""Three auto-complete drafts from one superposed decoding pass, filtered by an n-gram model.

Runs offline: a tiny byte-level GPT-2 is trained for a few seconds on a short text, and an
interpolated-MLE 4-gram model is counted from the same text. With a real checkpoint, pass
``AutoModelForCausalLM.from_pretrained(...)`` and n-gram counts of a corpus tokenized with its tokenizer.

    python examples/superposed_drafts.py
"""

from __future__ import annotations

import numpy as np
import torch
import transformers

from stepfuse import NGramLM
from stepfuse.superposed import superposed_generate

TEXT = (
    "the cat sat on the mat. the dog sat on the rug. the cat ate the fish. "
    "the dog ate the bone. a bird sat on the tree. the bird ate the seed. "
) * 20


def main() -> None:
    torch.manual_seed(0)
    data = torch.tensor(list(TEXT.encode()))
    cfg = transformers.GPT2Config(
        vocab_size=256, n_positions=64, n_embd=64, n_layer=2, n_head=4, bos_token_id=None, eos_token_id=None
    )
    model = transformers.GPT2LMHeadModel(cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(150):
        starts = torch.randint(0, len(data) - 33, (16,))
        batch = data[starts[:, None] + torch.arange(33)]
        loss = model(input_ids=batch, labels=batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()

    sentences = [np.frombuffer(s.strip().encode(), np.uint8) for s in TEXT.split(".") if s.strip()]
    ngram = NGramLM.train(
        sentences, 4, smoothing="interpolated_mle", weights=[0.0, 0.2, 0.3, 0.5], vocab_size=256
    )

    prompts = ["the cat ", "a bird s"]
    ids = torch.tensor([list(p.encode()) for p in prompts])
    result = superposed_generate(model, ids, k=3, max_new_tokens=12, ngram=ngram)
    for prompt, drafts, ppls in zip(prompts, result.drafts, result.perplexities):
        print(repr(prompt))
        for draft, ppl in zip(drafts, ppls):
            print(f"  {bytes(draft).decode(errors='replace')!r:<20} perplexity {ppl:.2f}")


if __name__ == "__main__":
    main()
