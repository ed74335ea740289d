"""Sampling: each filter on hand-made distributions, llama.cpp's penalty formulas, seeds, per-row parameters."""

from __future__ import annotations

import math

import pytest
import torch

from hogar.engine.sampling import (
    SamplingParams,
    apply_logit_bias,
    apply_penalties,
    apply_temperature,
    make_generator,
    min_p_filter,
    sample,
    top_k_filter,
    top_p_filter,
    typical_filter,
)

NEG_INF = float("-inf")
OFF = dict(top_k=0, top_p=1.0, min_p=0.0, typical_p=1.0)  # every filter off: plain softmax sampling


def probs_logits(*probs: float) -> torch.Tensor:
    """[1, V] logits whose softmax is probs."""
    return torch.tensor([[math.log(p) for p in probs]])


def kept(filtered: torch.Tensor) -> set[int]:
    return set(torch.isfinite(filtered[0]).nonzero().flatten().tolist())


def draw(logits: torch.Tensor, params: list[SamplingParams], seed: int = 0, history=None) -> torch.Tensor:
    gens = [make_generator(seed + i) for i in range(len(params))]
    return sample(logits, params, history or [[] for _ in params], gens)


def test_greedy_is_argmax():
    logits = torch.randn(6, 50, generator=torch.Generator().manual_seed(1))
    for temperature in (0.0, -1.0):
        out = draw(logits, [SamplingParams(temperature=temperature)] * 6)
        assert out.dtype == torch.int64 and out.shape == (6,)
        assert torch.equal(out, logits.argmax(dim=-1))


def test_top_k_one_is_argmax_whatever_the_temperature():
    logits = torch.randn(4, 100, generator=torch.Generator().manual_seed(2))
    for temperature in (0.1, 1.0, 5.0, 100.0):
        for seed in range(5):
            out = draw(logits, [SamplingParams(temperature=temperature, top_k=1, top_p=1.0, min_p=0.0)] * 4, seed)
            assert torch.equal(out, logits.argmax(dim=-1))


def test_top_k_per_row():
    logits = torch.tensor([[1.0, 5.0, 3.0, 4.0, 2.0]] * 3)
    out = top_k_filter(logits, [1, 3, 0])
    assert torch.isfinite(out).tolist() == [
        [False, True, False, False, False],
        [False, True, True, True, False],
        [True] * 5,
    ]


def test_top_p_keeps_the_smallest_prefix_reaching_p():
    logits = probs_logits(0.15, 0.5, 0.05, 0.3)  # not sorted: the filter must not rely on the order
    assert kept(top_p_filter(logits, 0.4)) == {1}
    assert kept(top_p_filter(logits, 0.7)) == {1, 3}
    assert kept(top_p_filter(logits, 0.9)) == {1, 3, 0}
    assert kept(top_p_filter(logits, 0.99)) == {0, 1, 2, 3}
    assert kept(top_p_filter(logits, 1.0)) == {0, 1, 2, 3}
    assert kept(top_p_filter(logits, 0.0)) == {1}  # llama.cpp keeps at least one


def test_top_p_on_a_large_vocabulary_matches_a_full_sort():
    logits = torch.randn(3, 20_000, generator=torch.Generator().manual_seed(3)) * 4
    for p in (0.3, 0.9, 0.95):
        probs, order = torch.sort(torch.softmax(logits, -1), -1, descending=True)
        before = torch.cumsum(probs, -1) - probs
        expected = torch.zeros_like(logits, dtype=torch.bool).scatter(1, order, before < p)
        got = torch.isfinite(top_p_filter(logits, p))
        assert (got != expected).sum() <= 2  # at most a rounding difference at the boundary


def test_min_p_drops_tokens_below_p_times_the_best():
    logits = probs_logits(0.5, 0.3, 0.15, 0.05)
    assert kept(min_p_filter(logits, 0.2)) == {0, 1, 2}  # threshold 0.1
    assert kept(min_p_filter(logits, 0.5)) == {0, 1}  # threshold 0.25
    assert kept(min_p_filter(logits, 1.0)) == {0}
    assert kept(min_p_filter(logits, 0.0)) == {0, 1, 2, 3}


def test_typical_keeps_tokens_closest_to_the_entropy():
    # Entropy 1.142 nats; surprisals 0.693, 1.204, 1.897, 2.996: token 1 is the most typical, then 0, 2, 3.
    logits = probs_logits(0.5, 0.3, 0.15, 0.05)
    assert kept(typical_filter(logits, 0.2)) == {1}  # typical sampling can drop the most probable token
    assert kept(typical_filter(logits, 0.5)) == {0, 1}
    assert kept(typical_filter(logits, 0.9)) == {0, 1, 2}
    assert kept(typical_filter(logits, 1.0)) == {0, 1, 2, 3}


def test_filters_accept_per_row_values():
    logits = probs_logits(0.5, 0.3, 0.15, 0.05).repeat(2, 1)
    assert torch.isfinite(min_p_filter(logits, [0.5, 0.0])).sum(-1).tolist() == [2, 4]
    assert torch.isfinite(top_p_filter(logits, [0.4, 1.0])).sum(-1).tolist() == [1, 4]
    assert torch.isfinite(typical_filter(logits, [0.2, 1.0])).sum(-1).tolist() == [1, 4]


def test_temperature_scales_and_greedy_rows_keep_only_the_argmax():
    logits = torch.tensor([[1.0, 3.0, 2.0], [1.0, 3.0, 2.0]])
    out = apply_temperature(logits, [0.5, 0.0])
    assert out[0].tolist() == [2.0, 6.0, 4.0]
    assert out[1].tolist() == [NEG_INF, 3.0, NEG_INF]


def test_repeat_penalty_llama_cpp_formula_over_the_window():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, 0.0]])
    history = [[0, 1, 1, 4]]
    out = apply_penalties(logits, history, [SamplingParams(repeat_penalty=2.0, repeat_last_n=64)])
    assert out[0].tolist() == [1.0, -2.0, 0.5, 3.0, 0.0]  # positive divided, negative multiplied, unseen untouched
    last2 = apply_penalties(logits, history, [SamplingParams(repeat_penalty=2.0, repeat_last_n=2)])
    assert last2[0].tolist() == [2.0, -2.0, 0.5, 3.0, 0.0]  # window [1, 4]
    whole = apply_penalties(logits, history, [SamplingParams(repeat_penalty=2.0, repeat_last_n=-1)])
    assert torch.equal(whole, out)
    off = apply_penalties(logits, history, [SamplingParams(repeat_penalty=2.0, repeat_last_n=0)])
    assert torch.equal(off, logits)


def test_presence_and_frequency_penalties():
    logits = torch.tensor([[2.0, -1.0, 0.5, 3.0, 0.0]])
    history = [[0, 1, 1, 4, 1]]  # counts: 0 -> 1, 1 -> 3, 4 -> 1
    presence = apply_penalties(logits, history, [SamplingParams(presence_penalty=0.5)])
    assert presence[0].tolist() == [1.5, -1.5, 0.5, 3.0, -0.5]
    frequency = apply_penalties(logits, history, [SamplingParams(frequency_penalty=0.25)])
    assert frequency[0].tolist() == [1.75, -1.75, 0.5, 3.0, -0.25]
    both = apply_penalties(
        logits, history, [SamplingParams(repeat_penalty=2.0, presence_penalty=0.5, frequency_penalty=0.25)]
    )
    assert both[0].tolist() == [2.0 / 2 - 0.25 - 0.5, -1.0 * 2 - 0.75 - 0.5, 0.5, 3.0, 0.0 - 0.25 - 0.5]


def test_logit_bias_and_ignore_eos():
    logits = torch.tensor([[1.0, 2.0, 3.0, 0.0]])
    biased = apply_logit_bias(logits, [SamplingParams(logit_bias={0: 5.0, 2: NEG_INF})])
    assert biased[0].tolist() == [6.0, 2.0, NEG_INF, 0.0]
    greedy = SamplingParams(temperature=0)
    assert draw(logits, [greedy]).item() == 2
    assert draw(logits, [SamplingParams(temperature=0, logit_bias={2: NEG_INF})]).item() == 1
    no_eos = SamplingParams(temperature=0, ignore_eos=True)
    gens = [make_generator(0)]
    assert sample(logits, [no_eos], [[]], gens, eos_ids=frozenset({2})).item() == 1
    assert sample(logits, [greedy], [[]], gens, eos_ids=frozenset({2})).item() == 2
    with pytest.raises(ValueError, match="outside the vocabulary"):
        apply_logit_bias(logits, [SamplingParams(logit_bias={4: 1.0})])


def test_banned_tokens_are_never_sampled():
    logits = torch.zeros(1, 8)
    params = SamplingParams(temperature=1.0, logit_bias={t: NEG_INF for t in range(6)}, **OFF)
    tokens = {draw(logits, [params], seed).item() for seed in range(50)}
    assert tokens == {6, 7}
    with pytest.raises(ValueError, match="every token is banned"):
        draw(logits, [SamplingParams(logit_bias={t: NEG_INF for t in range(8)})])


def test_same_seed_same_tokens_and_rows_are_independent():
    logits = torch.randn(3, 1000, generator=torch.Generator().manual_seed(4))
    params = [SamplingParams(temperature=1.5, **OFF)] * 3
    runs = []
    for _ in range(2):
        gens = [make_generator(7), make_generator(8), make_generator(9)]
        runs.append([sample(logits, params, [[]] * 3, gens).tolist() for _ in range(10)])
    assert runs[0] == runs[1]
    # A row's tokens do not depend on the rest of the batch.
    gen = make_generator(8)
    alone = [sample(logits[1:2], params[:1], [[]], [gen]).item() for _ in range(10)]
    assert alone == [step[1] for step in runs[0]]
    other = make_generator(10)
    assert [sample(logits[1:2], params[:1], [[]], [other]).item() for _ in range(10)] != alone


def test_random_seed_generators_differ():
    a, b = make_generator(None), make_generator(None)
    assert torch.rand(4, generator=a).tolist() != torch.rand(4, generator=b).tolist()
    assert torch.rand(4, generator=make_generator(-1)).tolist() != torch.rand(4, generator=make_generator(-1)).tolist()


def test_per_row_parameters_in_one_batch():
    logits = torch.tensor([[0.0, 1.0, 2.0, 3.0]] * 3)
    history = [[], [3, 3], []]
    params = [
        SamplingParams(temperature=0),
        SamplingParams(temperature=0, repeat_penalty=4.0),  # 3 -> 0.75: argmax moves to 2
        SamplingParams(temperature=1.0, top_k=2, logit_bias={3: NEG_INF}),  # only 1 or 2
    ]
    for seed in range(20):
        out = draw(logits, params, seed, history).tolist()
        assert out[:2] == [3, 2] and out[2] in (1, 2)


def test_empirical_distribution_matches_softmax():
    logits = torch.tensor([[1.0, 0.0, -1.0, 2.0, 0.5, -2.0]])
    for temperature in (1.0, 0.5):
        expected = torch.softmax(logits[0] / temperature, -1)
        rows, calls = 2000, 5
        params = [SamplingParams(temperature=temperature, **OFF)] * rows
        gens = [make_generator(1000 + i) for i in range(rows)]
        tokens = torch.cat([sample(logits.expand(rows, -1), params, [[]] * rows, gens) for _ in range(calls)])
        counts = torch.bincount(tokens, minlength=6).double()
        n = rows * calls
        chi2 = (((counts - n * expected) ** 2) / (n * expected)).sum().item()
        assert chi2 < 25, (chi2, counts.tolist())  # 5 degrees of freedom: 20.5 is the 0.1 % tail


def test_default_chain_samples_only_plausible_tokens():
    logits = torch.randn(2, 5000, generator=torch.Generator().manual_seed(5)) * 3
    params = [SamplingParams(seed=1)] * 2  # top_k 40, top_p 0.95, min_p 0.05, temperature 0.8
    top40 = torch.topk(logits, 40).indices
    for seed in range(10):
        out = draw(logits, params, seed)
        for row in range(2):
            assert out[row] in top40[row]
            probs = torch.softmax(logits[row], -1)
            assert probs[out[row]] >= 0.05 * probs.max()


def test_inputs_are_not_modified():
    logits = torch.randn(2, 64, generator=torch.Generator().manual_seed(6))
    before = logits.clone()
    history = [[1, 2, 2, 3], [5]]
    params = [
        SamplingParams(repeat_penalty=1.3, presence_penalty=0.2, frequency_penalty=0.1, logit_bias={0: NEG_INF}),
        SamplingParams(temperature=0, top_k=0, typical_p=0.5, ignore_eos=True),
    ]
    sample(logits, params, history, [make_generator(0), make_generator(1)], eos_ids=frozenset({7}))
    apply_penalties(logits, history, params)
    apply_logit_bias(logits, params, frozenset({7}))
    for fn, value in ((top_k_filter, 5), (top_p_filter, 0.5), (min_p_filter, 0.1), (typical_filter, 0.5),
                      (apply_temperature, 0.7)):
        out = fn(logits, value)
        assert out is not logits
    assert torch.equal(logits, before)
    assert history == [[1, 2, 2, 3], [5]]


def test_shapes_are_checked():
    with pytest.raises(ValueError, match=r"\[batch, vocab\]"):
        draw(torch.zeros(8), [SamplingParams()])
    with pytest.raises(ValueError, match="per row"):
        sample(torch.zeros(2, 8), [SamplingParams()], [[]], [make_generator(0)])
    assert sample(torch.zeros(0, 8), [], [], []).shape == (0,)
    with pytest.raises(ValueError, match="NaN"):
        draw(torch.tensor([[0.0, float("nan")]]), [SamplingParams()])


def test_defaults_validate():
    SamplingParams().validate()
    SamplingParams(temperature=-1, seed=-1, stop=("a", "b"), max_tokens=0, logit_bias={3: NEG_INF}).validate()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_p=1.5), "top_p"),
        (dict(top_p=-0.1), "top_p"),
        (dict(min_p=2.0), "min_p"),
        (dict(typical_p=float("nan")), "typical_p"),
        (dict(top_k=1.5), "top_k"),
        (dict(repeat_penalty=0.0), "repeat_penalty"),
        (dict(repeat_last_n=-2), "repeat_last_n"),
        (dict(presence_penalty=float("inf")), "presence_penalty"),
        (dict(frequency_penalty="1"), "frequency_penalty"),
        (dict(logit_bias={-1: 1.0}), "logit_bias"),
        (dict(logit_bias={1: float("inf")}), "logit_bias"),
        (dict(logit_bias={1: float("nan")}), "logit_bias"),
        (dict(seed=1.5), "seed"),
        (dict(stop="###"), "stop"),
        (dict(stop=("",)), "stop"),
        (dict(max_tokens=-2), "max_tokens"),
        (dict(ignore_eos="yes"), "ignore_eos"),
    ],
)
def test_nonsense_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message) as info:
        SamplingParams(**kwargs).validate()
    assert "\n" not in str(info.value)
