"""Mixture-of-experts families for scripts/tiny_models.py: Mixtral (GGUF `llama` with experts), Qwen2-MoE (routed
experts plus a gated shared expert), Qwen3-MoE (renormalized top-k, per-head q/k norm), OLMoE (q/k norm over the
whole projection).  The routers get a gain so that the selected experts win by clear margins: random routers give
near-ties, where rounding noise would decide which experts run."""

from __future__ import annotations

from tiny_models import SMALL, Family  # scripts/ is sys.path[0] when tiny_models.py runs

ROUTER_GAIN = {".gate.weight": 4.0}  # mlp.gate (the router); not shared_expert_gate, not gate_proj
NO_TIE = dict(SMALL, tie_word_embeddings=False)
IDS = dict(bos_token_id=0, eos_token_id=0, pad_token_id=0)  # the tiny tokenizer's <|endoftext|>

FAMILIES = [
    Family("mixtral", "llama", "MixtralForCausalLM", "MixtralConfig",
           dict(NO_TIE, num_local_experts=4, num_experts_per_tok=2, sliding_window=None, **IDS), gains=ROUTER_GAIN),
    Family("qwen2moe", "qwen2moe", "Qwen2MoeForCausalLM", "Qwen2MoeConfig",
           dict(NO_TIE, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=64,
                shared_expert_intermediate_size=128, norm_topk_prob=False, **IDS), pre="qwen2", gains=ROUTER_GAIN),
    Family("qwen3moe", "qwen3moe", "Qwen3MoeForCausalLM", "Qwen3MoeConfig",
           dict(NO_TIE, head_dim=32, num_experts=8, num_experts_per_tok=2, moe_intermediate_size=64,
                norm_topk_prob=True, **IDS), pre="qwen2", gains=ROUTER_GAIN),
    Family("olmoe", "olmoe", "OlmoeForCausalLM", "OlmoeConfig",
           # llama.cpp's olmoe has k_norm over n_embd: no grouped-query heads
           dict(NO_TIE, num_key_value_heads=4, num_experts=8, num_experts_per_tok=2, norm_topk_prob=False, **IDS),
           pre="olmo", gains=ROUTER_GAIN, seed=3),  # seed 3: clearer top-1 margins than 0-2
]
