"""HuggingFace transformers backend: a causal LM as step proposer (batched sampling with a KV cache,
stopping at the step delimiter) and as scorer (a per-token value head, or LM-as-judge
log-probability of a "yes" token). torch and transformers are imported lazily.

Sampling inverts the CDF with one uniform per row drawn from a counter-based hash of (seed, prompt,
sample index, position), so a state's proposals do not depend on which other states share the batch.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Sequence
from typing import Any

from stepfuse.errors import InvalidArgumentError, InvalidTypeError, require
from stepfuse.search.protocols import State, Step, StepSplitter

_M1 = 0x9E3779B97F4A7C15 - (1 << 64)  # as signed int64 constants for wrapping torch arithmetic
_M2 = 0xBF58476D1CE4E5B9 - (1 << 64)
_M3 = 0x94D049BB133111EB - (1 << 64)


def _torch() -> Any:
    return require("torch", "torch")


def _srl(x: Any, k: int) -> Any:
    """Logical right shift of int64 tensors."""
    return (x >> k) & ((1 << (64 - k)) - 1)


def _uniform(torch: Any, row_seed: Any, step: int) -> Any:
    """One Uniform(0,1) float64 per row from SplitMix64 of (row_seed, step)."""
    s = torch.tensor([step * 7_919 + 1], dtype=torch.int64, device=row_seed.device) * _M1
    x = row_seed * 1_000_003 + s
    x = (x ^ _srl(x, 30)) * _M2
    x = (x ^ _srl(x, 27)) * _M3
    x = x ^ _srl(x, 31)
    return (_srl(x, 11).to(torch.float64) + 0.5) / float(1 << 53)


_STOP_MASKS: dict[tuple[int, str, int], tuple[Any, Any]] = {}


def _device(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        return "cpu"


def _cache_arg(model: Any) -> str:
    """Name of the KV-cache argument of ``model.forward`` ("cache" in newer transformers,
    "past_key_values" before); looks through wrapper modules to the first model that names one."""
    import inspect

    mods = [model, *model.modules()] if hasattr(model, "modules") else [model]
    for m in mods:
        try:
            names = inspect.signature(m.forward).parameters
        except (TypeError, ValueError, AttributeError):
            continue
        for name in ("cache", "past_key_values"):
            if name in names:
                return name
    return "past_key_values"


def _encode(tokenizer: Any, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


class HFProposer:
    """Samples next steps from a causal LM, all states x ``n`` samples in one batched decode.

    A step ends at the splitter's delimiter (not included in the step), at EOS (terminal step), or
    after ``max_step_tokens`` tokens. ``logprob`` is the step's summed token log-probability under
    the model at temperature 1; ``is_terminal(text)`` may mark further steps as final (e.g. one
    stating the answer).

    model: a ``transformers`` causal LM (``model(input_ids, attention_mask, position_ids,
    past_key_values, use_cache)`` returning ``.logits`` [B, T, V]); tokenizer: a HF tokenizer.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        splitter: StepSplitter | None = None,
        max_step_tokens: int = 64,
        temperature: float = 1.0,
        seed: int = 0,
        eos_token_id: int | None = None,
        is_terminal: Callable[[str], bool] | None = None,
        batch_size: int = 64,
    ) -> None:
        if max_step_tokens < 1:
            raise InvalidArgumentError(f"max_step_tokens: must be >= 1, got {max_step_tokens}")
        if not temperature > 0:
            raise InvalidArgumentError(f"temperature: must be > 0, got {temperature}")
        if batch_size < 1:
            raise InvalidArgumentError(f"batch_size: must be >= 1, got {batch_size}")
        self.model = model
        self.tokenizer = tokenizer
        self.splitter = splitter or StepSplitter()
        self.max_step_tokens = max_step_tokens
        self.temperature = float(temperature)
        self.seed = seed
        self.eos = eos_token_id if eos_token_id is not None else getattr(tokenizer, "eos_token_id", None)
        self.is_terminal = is_terminal
        self.batch_size = batch_size
        self._cache = _cache_arg(model)

    def _stop_candidates(self, torch: Any, vocab: int) -> Any:
        """Tokens whose text contains the delimiter's first character (only they can end a step)."""
        first = self.splitter.delimiter[0]
        key = (id(self.tokenizer), first, vocab)
        hit = _STOP_MASKS.get(key)
        if hit is None or hit[0] is not self.tokenizer:
            texts = self.tokenizer.batch_decode([[i] for i in range(vocab)])
            hit = (self.tokenizer, torch.tensor([first in t for t in texts], dtype=torch.bool))
            _STOP_MASKS[key] = hit
        return hit[1]

    def propose(self, states: Sequence[State], n: int) -> list[list[Step]]:
        """``n`` sampled next steps for every state."""
        if n < 1:
            raise InvalidArgumentError(f"n: must be >= 1, got {n}")
        rows: list[tuple[str, int]] = []
        seen: dict[str, int] = {}
        for st in states:
            if not isinstance(st, State):
                raise InvalidTypeError(f"states: expected State, got {type(st).__name__}")
            prompt = self.splitter.prompt(st)
            k = seen.get(prompt, 0)
            seen[prompt] = k + 1
            rows.extend((prompt, k * n + j) for j in range(n))
        steps: list[Step] = []
        for a in range(0, len(rows), self.batch_size):
            steps.extend(self._decode(rows[a : a + self.batch_size]))
        return [steps[i * n : (i + 1) * n] for i in range(len(states))]

    def _decode(self, rows: list[tuple[str, int]]) -> list[Step]:
        torch = _torch()
        dev = _device(self.model)
        enc = [_encode(self.tokenizer, p) for p, _ in rows]
        if any(not e for e in enc):
            raise InvalidArgumentError("states: a prompt encodes to no tokens")
        B, L = len(enc), max(len(e) for e in enc)
        pad = self.eos if self.eos is not None else 0
        ids = torch.full((B, L), pad, dtype=torch.int64)
        mask = torch.zeros((B, L), dtype=torch.int64)
        for i, e in enumerate(enc):  # left padding
            ids[i, L - len(e) :] = torch.tensor(e)
            mask[i, L - len(e) :] = 1
        ids, mask = ids.to(dev), mask.to(dev)
        row_seed = torch.tensor(
            [zlib.crc32(f"{self.seed}\x1f{p}\x1f{k}".encode()) for p, k in rows], dtype=torch.int64, device=dev
        )
        cols: list[Any] = []  # sampled token per position, [B] each
        logp = torch.zeros(B, dtype=torch.float64, device=dev)
        length = torch.zeros(B, dtype=torch.int64, device=dev)
        done = torch.zeros(B, dtype=torch.bool, device=dev)
        result: list[Step | None] = [None] * B
        past = None
        cur_ids, cur_pos = ids, (mask.cumsum(-1) - 1).clamp(min=0)
        eos = -1 if self.eos is None else int(self.eos)

        def row_ids(i: int) -> list[int]:
            return [int(c[i]) for c in cols[: int(length[i])]]

        with torch.no_grad():
            for t in range(self.max_step_tokens):
                kw = {self._cache: past}
                out = self.model(input_ids=cur_ids, attention_mask=mask, position_ids=cur_pos, use_cache=True, **kw)
                past = getattr(out, self._cache)
                logits = out.logits[:, -1, :].to(torch.float64)
                vocab = logits.shape[-1]
                lsm = torch.log_softmax(logits, dim=-1)
                probs = lsm.exp() if self.temperature == 1.0 else torch.softmax(logits / self.temperature, dim=-1)
                cdf = probs.cumsum(dim=-1)
                u = _uniform(torch, row_seed, t)[:, None] * cdf[:, -1:]
                tok = torch.searchsorted(cdf, u)[:, 0].clamp(max=vocab - 1)
                live = ~done
                cols.append(tok.cpu())
                logp += torch.where(live, lsm.gather(1, tok[:, None])[:, 0], 0.0)
                length += live.to(torch.int64)
                is_eos = live & (tok == eos)
                cand = live & ~is_eos & self._stop_candidates(torch, vocab).to(dev)[tok]
                # only rows that sampled EOS or a token that may complete the delimiter need Python work
                for i in torch.nonzero(is_eos)[:, 0].tolist():
                    ids_i = row_ids(i)
                    result[i] = self._finish(ids_i[:-1], ids_i, float(logp[i]), eos=True)
                    done[i] = True
                for i in torch.nonzero(cand)[:, 0].tolist():
                    ids_i = row_ids(i)
                    text = self.tokenizer.decode(ids_i).lstrip()
                    if self.splitter.delimiter in text:
                        body = text.split(self.splitter.delimiter)[0]
                        result[i] = self._finish_text(body.rstrip(), ids_i, float(logp[i]), eos=False)
                        done[i] = True
                if bool(done.all()):
                    break
                cur_ids = tok[:, None]
                mask = torch.cat([mask, torch.ones((B, 1), dtype=mask.dtype, device=dev)], dim=1)
                cur_pos = cur_pos[:, -1:] + 1
        for i in range(B):
            if result[i] is None:  # ran out of tokens: the step ends here
                ids_i = row_ids(i)
                result[i] = self._finish(ids_i, ids_i, float(logp[i]), eos=False)
        return result  # type: ignore[return-value]

    def _finish(self, body_ids: list[int], ids: list[int], logp: float, eos: bool) -> Step:
        text = self.tokenizer.decode(body_ids).strip()
        if self.splitter.delimiter in text:
            text = text.split(self.splitter.delimiter)[0].rstrip()
        return self._finish_text(text, ids, logp, eos)

    def _finish_text(self, text: str, ids: list[int], logp: float, eos: bool) -> Step:
        terminal = eos
        if not text.strip():
            text, terminal = "<empty step>", True
        if self.is_terminal is not None and self.is_terminal(text):
            terminal = True
        return Step(text, tuple(ids), float(logp), terminal)


class HFScorer:
    """Scores every step of every state with a transformers model, in one batched forward.

    ``mode="value"``: ``model(input_ids, attention_mask).logits`` is [B, T, C] (e.g.
    ``GPT2ForTokenClassification(num_labels=1)``, a value/reward head); a step's score is
    ``activation(logits[end_of_step, 0])``. ``mode="judge"``: a causal LM reads each prefix followed by
    ``judge_prompt`` and the score is P(yes) / (P(yes) + P(no)) for the ``yes``/``no`` tokens
    (LM-as-judge). Steps are tokenized piecewise, so step boundaries are exact.
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        mode: str = "value",
        splitter: StepSplitter | None = None,
        activation: str = "sigmoid",
        judge_prompt: str = "\nIs the last step correct?",
        yes: str = " Yes",
        no: str = " No",
        batch_size: int = 64,
    ) -> None:
        if mode not in ("value", "judge"):
            raise InvalidArgumentError(f"mode: must be 'value' or 'judge', got {mode!r}")
        if activation not in ("sigmoid", "tanh", "none"):
            raise InvalidArgumentError(f"activation: must be 'sigmoid', 'tanh' or 'none', got {activation!r}")
        self.model, self.tokenizer, self.mode = model, tokenizer, mode
        self.splitter = splitter or StepSplitter()
        self.activation = activation
        self.batch_size = batch_size
        self.judge_ids = _encode(tokenizer, judge_prompt)
        y, n_ = _encode(tokenizer, yes), _encode(tokenizer, no)
        if mode == "judge" and (len(y) != 1 or len(n_) != 1 or y == n_):
            raise InvalidArgumentError(f"yes/no: must each encode to one distinct token, got {y} and {n_}")
        self.yes_id = y[0] if y else -1
        self.no_id = n_[0] if n_ else -1

    def _pieces(self, st: State) -> tuple[list[int], list[int]]:
        """Token ids of the state and the index of the last token of every step."""
        ids = _encode(self.tokenizer, st.problem + self.splitter.delimiter)
        ends = []
        delim = _encode(self.tokenizer, self.splitter.delimiter)
        for s in st.steps:
            ids += _encode(self.tokenizer, s)
            ends.append(len(ids) - 1)
            ids += delim
        return ids, ends

    def score(self, states: Sequence[State]) -> list[list[float]]:
        """One score per step of every state."""
        seqs: list[list[int]] = []
        reads: list[tuple[int, int, int]] = []  # (state, sequence, position)
        for i, st in enumerate(states):
            if not isinstance(st, State):
                raise InvalidTypeError(f"states: expected State, got {type(st).__name__}")
            ids, ends = self._pieces(st)
            if self.mode == "value":
                seqs.append(ids)
                reads.extend((i, len(seqs) - 1, e) for e in ends)
            else:
                for e in ends:
                    seqs.append(ids[: e + 1] + self.judge_ids)
                    reads.append((i, len(seqs) - 1, len(seqs[-1]) - 1))
        values = self._forward(seqs, reads)
        out: list[list[float]] = [[] for _ in states]
        for (i, _, _), v in zip(reads, values):
            out[i].append(v)
        return out

    def _forward(self, seqs: list[list[int]], reads: list[tuple[int, int, int]]) -> list[float]:
        torch = _torch()
        dev = _device(self.model)
        vals: dict[tuple[int, int], float] = {}
        with torch.no_grad():
            for a in range(0, len(seqs), self.batch_size):
                chunk = seqs[a : a + self.batch_size]
                L = max(len(s) for s in chunk)
                ids = torch.zeros((len(chunk), L), dtype=torch.int64)
                mask = torch.zeros((len(chunk), L), dtype=torch.int64)
                for i, s in enumerate(chunk):  # right padding: positions stay 0..len-1
                    ids[i, : len(s)] = torch.tensor(s)
                    mask[i, : len(s)] = 1
                logits = self.model(input_ids=ids.to(dev), attention_mask=mask.to(dev)).logits.to(torch.float64)
                for _, j, pos in reads:
                    if a <= j < a + len(chunk):
                        row = logits[j - a, pos]
                        if self.mode == "value":
                            x = row[0]
                            v = torch.sigmoid(x) if self.activation == "sigmoid" else (
                                torch.tanh(x) if self.activation == "tanh" else x)
                        else:
                            pair = torch.stack([row[self.yes_id], row[self.no_id]])
                            v = torch.softmax(pair, dim=0)[0]
                        vals[(j, pos)] = float(v)
        return [vals[(j, pos)] for _, j, pos in reads]
