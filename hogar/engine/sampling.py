"""Token sampling as pure functions over [batch, vocab] logits, following llama.cpp's default sampler chain.

Per row: logit_bias (ignore_eos bans the end-of-generation ids) -> penalties -> top_k -> typical_p -> top_p -> min_p
-> temperature -> dist. Greedy rows (temperature <= 0) take the argmax right after the penalties. Every row has its
own parameters and its own generator, so a row's token never depends on the other rows of the batch. Filters mask
tokens with -inf and return new tensors: no function here modifies its inputs.
"""

from __future__ import annotations

import math
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import Tensor

NEG_INF = float("-inf")

# A scalar for every row, or one value per row.
RowValues = float | Sequence[float] | Tensor


@dataclass(frozen=True)
class SamplingParams:
    temperature: float = 0.8  # <= 0: greedy argmax
    top_k: int = 40  # <= 0: off
    top_p: float = 0.95  # 1.0: off
    min_p: float = 0.05  # 0: off
    typical_p: float = 1.0  # 1.0: off
    repeat_penalty: float = 1.0  # llama.cpp: logit > 0 ? logit / p : logit * p, for tokens in the window
    repeat_last_n: int = 64  # 0: off, -1: whole history
    presence_penalty: float = 0.0
    frequency_penalty: float = 0.0
    logit_bias: Mapping[int, float] = field(default_factory=dict)  # -inf bans a token
    seed: int | None = None  # None (or negative, llama.cpp's -1): random
    stop: tuple[str, ...] = ()
    max_tokens: int = -1  # -1: until end of generation or context
    ignore_eos: bool = False

    @property
    def greedy(self) -> bool:
        return self.temperature <= 0

    def validate(self) -> None:
        """Raise ValueError with a one-line message for a parameter that makes no sense."""
        _number("temperature", self.temperature)
        _integer("top_k", self.top_k)
        for name in ("top_p", "min_p", "typical_p"):
            value = _number(name, getattr(self, name))
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value!r}")
        if _number("repeat_penalty", self.repeat_penalty) <= 0:
            raise ValueError(f"repeat_penalty must be greater than 0 (1 is off), got {self.repeat_penalty!r}")
        _integer("repeat_last_n", self.repeat_last_n, minimum=-1)
        _number("presence_penalty", self.presence_penalty)
        _number("frequency_penalty", self.frequency_penalty)
        _check_logit_bias(self.logit_bias)
        if self.seed is not None:
            _integer("seed", self.seed, minimum=-(2**63))
            if self.seed >= 2**64:
                raise ValueError(f"seed must fit in 64 bits, got {self.seed!r}")
        if isinstance(self.stop, str) or not isinstance(self.stop, Sequence):
            raise ValueError(f"stop must be a list of strings, got {self.stop!r}")
        for s in self.stop:
            if not isinstance(s, str) or not s:
                raise ValueError(f"each stop must be a non-empty string, got {s!r}")
        _integer("max_tokens", self.max_tokens, minimum=-1)
        if not isinstance(self.ignore_eos, bool):
            raise ValueError(f"ignore_eos must be true or false, got {self.ignore_eos!r}")


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _integer(name: str, value: object, minimum: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value!r}")
    return value


def _check_logit_bias(bias: object) -> None:
    if not isinstance(bias, Mapping):
        raise ValueError(f"logit_bias must map token ids to numbers, got {bias!r}")
    for token, value in bias.items():
        _integer("a logit_bias token id", token, minimum=0)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value == math.inf:
            raise ValueError(f"logit_bias for token {token} must be a number or -inf, got {value!r}")


def make_generator(seed: int | None, device: str | torch.device = "cpu") -> torch.Generator:
    """A generator for one sequence; seed None (or negative, llama.cpp's -1) picks a random seed."""
    gen = torch.Generator(device=device)
    gen.manual_seed(secrets.randbits(63) if seed is None or seed < 0 else seed)
    return gen


def _shape(logits: Tensor) -> tuple[int, int]:
    if logits.ndim != 2:
        raise ValueError(f"logits must be [batch, vocab], got shape {tuple(logits.shape)}")
    return logits.shape[0], logits.shape[1]


def _rows(value: RowValues, logits: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """A [batch, 1] tensor holding each row's value of a parameter."""
    batch = logits.shape[0]
    t = torch.as_tensor(value, dtype=dtype, device=logits.device)
    if t.ndim == 0:
        t = t.expand(batch)
    if t.shape != (batch,):
        raise ValueError(f"expected a scalar or {batch} per-row values, got shape {tuple(t.shape)}")
    return t.reshape(batch, 1)


def _scatter_keep(keep_sorted: Tensor, order: Tensor, logits: Tensor) -> Tensor:
    """Map a keep-mask over sorted positions (order: their vocabulary ids) back to a [batch, vocab] mask."""
    return torch.zeros(logits.shape, dtype=torch.bool, device=logits.device).scatter(1, order, keep_sorted)


def apply_logit_bias(
    logits: Tensor, params: Sequence[SamplingParams], eos_ids: frozenset[int] = frozenset()
) -> Tensor:
    """Add each row's logit_bias; rows with ignore_eos get -inf on the end-of-generation ids."""
    out = logits.clone()
    _bias_(out, params, eos_ids)
    return out


def apply_penalties(logits: Tensor, history: Sequence[Sequence[int]], params: Sequence[SamplingParams]) -> Tensor:
    """Repeat, presence and frequency penalties over each row's last repeat_last_n tokens, as llama.cpp applies them.

    history holds each row's prompt and generated ids. For a token seen `count` times in the window:
    logit = logit / repeat if logit > 0 else logit * repeat; logit -= count * frequency + presence.
    """
    out = logits.clone()
    _penalize_(out, history, params)
    return out


def _row_bias(p: SamplingParams, eos_ids: frozenset[int]) -> dict[int, float]:
    bias = dict(p.logit_bias)
    if p.ignore_eos:
        bias.update(dict.fromkeys(eos_ids, NEG_INF))
    return bias


def _penalties_on(p: SamplingParams) -> bool:
    off = p.repeat_penalty == 1.0 and p.presence_penalty == 0.0 and p.frequency_penalty == 0.0
    return not off and p.repeat_last_n != 0


def _bias_(out: Tensor, params: Sequence[SamplingParams], eos_ids: frozenset[int]) -> None:
    batch, vocab = _shape(out)
    if len(params) != batch:
        raise ValueError(f"need one SamplingParams per row ({batch}), got {len(params)}")
    for row, p in enumerate(params):
        bias = _row_bias(p, eos_ids)
        if not bias:
            continue
        bad = [t for t in bias if not 0 <= t < vocab]
        if bad:
            raise ValueError(f"logit_bias token id {bad[0]} is outside the vocabulary (0..{vocab - 1})")
        ids = torch.tensor(list(bias), dtype=torch.long, device=out.device)
        out[row, ids] += torch.tensor(list(bias.values()), dtype=out.dtype, device=out.device)


def _penalize_(out: Tensor, history: Sequence[Sequence[int]], params: Sequence[SamplingParams]) -> None:
    batch, vocab = _shape(out)
    if len(history) != batch or len(params) != batch:
        raise ValueError(f"need one history and one SamplingParams per row ({batch}), got {len(history)} and "
                         f"{len(params)}")
    for row, (p, hist) in enumerate(zip(params, history, strict=True)):
        if not _penalties_on(p) or len(hist) == 0:
            continue
        window = hist if p.repeat_last_n < 0 else hist[-p.repeat_last_n :]
        ids, counts = torch.unique(torch.as_tensor(window, dtype=torch.long), return_counts=True)
        if int(ids[0]) < 0 or int(ids[-1]) >= vocab:
            raise ValueError(f"row {row}: token history holds ids outside the vocabulary (0..{vocab - 1})")
        ids = ids.to(out.device)
        counts = counts.to(device=out.device, dtype=out.dtype)
        seen = out[row, ids]
        seen = torch.where(seen <= 0, seen * p.repeat_penalty, seen / p.repeat_penalty)
        out[row, ids] = seen - counts * p.frequency_penalty - p.presence_penalty


def top_k_filter(logits: Tensor, k: int | Sequence[int] | Tensor) -> Tensor:
    """Keep each row's k highest logits (exactly k, as llama.cpp); k <= 0 keeps everything."""
    _, vocab = _shape(logits)
    ks = _rows(k, logits, torch.long)
    ks = torch.where((ks <= 0) | (ks > vocab), vocab, ks)
    kmax = int(ks.max()) if ks.numel() else vocab
    if kmax >= vocab and bool((ks == vocab).all()):
        return logits.clone()
    _, order = torch.topk(logits, kmax, dim=-1)
    keep_sorted = torch.arange(kmax, device=logits.device).unsqueeze(0) < ks
    return logits.masked_fill(~_scatter_keep(keep_sorted, order, logits), NEG_INF)


def top_p_filter(logits: Tensor, p: RowValues) -> Tensor:
    """Keep the most probable tokens up to and including the one whose running probability reaches p (1: off)."""
    ps = _rows(p, logits)
    if bool((ps >= 1).all()):
        return logits.clone()
    full = torch.softmax(logits.float(), dim=-1)
    vocab = full.shape[1]
    # Sorting a whole 262k vocabulary is slow; grow a top-m prefix until it holds the mass p in every active row.
    m = min(vocab, 256)
    while True:
        probs, order = torch.topk(full, m, dim=-1)
        cum = torch.cumsum(probs, dim=-1)
        if m == vocab or bool(((cum[:, -1:] >= ps) | (ps >= 1)).all()):
            break
        m = min(vocab, m * 8)
    before = F.pad(cum[:, :-1], (1, 0))  # mass of the more probable tokens
    keep_sorted = before < ps
    keep_sorted[:, 0] = True
    return logits.masked_fill(~(_scatter_keep(keep_sorted, order, logits) | (ps >= 1)), NEG_INF)


def min_p_filter(logits: Tensor, p: RowValues) -> Tensor:
    """Drop tokens whose probability is below p times the top token's (0: off); llama.cpp compares logits."""
    ps = _rows(p, logits)
    if bool((ps <= 0).all()):
        return logits.clone()
    threshold = logits.amax(dim=-1, keepdim=True) + torch.log(ps)  # log(0) = -inf keeps everything
    return logits.masked_fill(logits < threshold, NEG_INF)


def typical_filter(logits: Tensor, p: RowValues) -> Tensor:
    """Locally typical sampling: keep the tokens whose surprisal is closest to the entropy, up to mass p (1: off)."""
    ps = _rows(p, logits)
    if bool((ps >= 1).all()):
        return logits.clone()
    logp = torch.log_softmax(logits.float(), dim=-1)
    probs = logp.exp()
    entropy = -torch.where(probs > 0, probs * logp, 0.0).sum(dim=-1, keepdim=True)
    shifted = (-logp - entropy).abs()  # masked tokens: +inf, so they sort last
    order = torch.argsort(shifted, dim=-1, stable=True)
    sorted_probs = probs.gather(1, order)
    before = F.pad(torch.cumsum(sorted_probs, dim=-1)[:, :-1], (1, 0))
    # llama.cpp stops after the first token whose running sum exceeds p (strictly), and keeps that token.
    keep_sorted = (before <= ps) | (ps >= 1)
    return logits.masked_fill(~_scatter_keep(keep_sorted, order, logits), NEG_INF)


def apply_temperature(logits: Tensor, temperature: RowValues) -> Tensor:
    """Divide by the temperature; rows with temperature <= 0 keep only their argmax (llama.cpp's temp sampler)."""
    ts = _rows(temperature, logits)
    greedy = ts <= 0
    scaled = logits / torch.where(greedy, 1.0, ts)
    if bool(greedy.any()):
        best = torch.zeros(logits.shape, dtype=torch.bool, device=logits.device)
        best.scatter_(1, logits.argmax(dim=-1, keepdim=True), True)
        scaled = scaled.masked_fill(greedy & ~best, NEG_INF)
    return scaled


def _draw(probs: Tensor, generators: Sequence[torch.Generator]) -> Tensor:
    """One index per row by inverse CDF, each row drawing one uniform number from its own generator."""
    u = torch.stack(
        [torch.rand((), generator=g, device=g.device, dtype=torch.float64).to(probs.device) for g in generators]
    )
    cdf = probs.double().cumsum(dim=-1)
    target = (u * cdf[:, -1]).unsqueeze(1)
    choice = torch.searchsorted(cdf, target, right=True).squeeze(1)
    # Rounding can put the target on the total; never land on a zero-probability tail token.
    last_live = probs.shape[1] - 1 - (probs > 0).flip(-1).int().argmax(dim=-1)
    return torch.minimum(choice, last_live)


def _sample_rows(
    logits: Tensor, params: Sequence[SamplingParams], generators: Sequence[torch.Generator]
) -> Tensor:
    vocab = logits.shape[1]
    ks = [p.top_k if 0 < p.top_k < vocab else vocab for p in params]
    kmax = max(ks)
    # With top_k on in every row, the rest of the chain only ever sees the top kmax candidates.
    cand, order = torch.topk(logits, kmax, dim=-1) if kmax < vocab else (logits, None)
    cand = top_k_filter(cand, ks)
    cand = typical_filter(cand, [p.typical_p for p in params])
    cand = top_p_filter(cand, [p.top_p for p in params])
    cand = min_p_filter(cand, [p.min_p for p in params])
    cand = apply_temperature(cand, [p.temperature for p in params])
    choice = _draw(torch.softmax(cand, dim=-1), generators)
    return choice if order is None else order.gather(1, choice.unsqueeze(1)).squeeze(1)


def sample(
    logits: Tensor,
    params: Sequence[SamplingParams],
    history: Sequence[Sequence[int]],
    generators: Sequence[torch.Generator],
    eos_ids: frozenset[int] = frozenset(),
) -> Tensor:
    """One token id per row ([batch] int64) from [batch, vocab] logits.

    params, history (prompt + generated ids) and generators hold one entry per row. Parameters are not validated
    here: call SamplingParams.validate() once per request.
    """
    batch, _ = _shape(logits)
    if not len(params) == len(history) == len(generators) == batch:
        raise ValueError(f"need one SamplingParams, history and generator per row ({batch}), got {len(params)}, "
                         f"{len(history)} and {len(generators)}")
    if batch == 0:
        return torch.empty(0, dtype=torch.long, device=logits.device)
    if any(_row_bias(p, eos_ids) or _penalties_on(p) for p in params):
        x = logits.to(torch.float32, copy=True)  # the one copy of the full logits; modified in place below
        _bias_(x, params, eos_ids)
        _penalize_(x, history, params)
    else:
        x = logits.float()
    best, out = x.max(dim=-1)  # one pass: greedy argmax (first of ties), NaN and all-banned rows
    if bool(torch.isnan(best).any()):
        raise ValueError("logits contain NaN")
    if bool(torch.isneginf(best).any()):
        row = int(torch.isneginf(best).nonzero()[0])
        raise ValueError(f"row {row}: every token is banned (logit_bias / ignore_eos)")
    rows = [i for i, p in enumerate(params) if not p.greedy]
    if len(rows) == batch:
        return _sample_rows(x, params, generators)
    if rows:
        index = torch.tensor(rows, device=x.device)
        out[index] = _sample_rows(x[index], [params[i] for i in rows], [generators[i] for i in rows])
    return out
