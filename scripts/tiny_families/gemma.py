"""Tiny gemma, gemma2 and granite checkpoints for scripts/tiny_models.py.

gemma2's caps are set so that they bite: Q and K are scaled up (gains) so that the attention logits reach several
times the attention cap, and the output cap is near the largest logits; its sliding window (8) is shorter than the
48-token sequence.  granite's four multipliers are all away from 1, and it has biases on attention and FFN."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # scripts/, where tiny_models lives

from tiny_models import SMALL, Family  # noqa: E402

GEMMA = dict(SMALL, head_dim=16)

# The output head is the embedding table, and the embeddings enter the residual stream scaled by sqrt(n_embd): left
# alone, they dominate it and every top-1 is the input token.  The layers' outputs are scaled up to compete (gemma's
# projections; gemma2's post-norms, whose weights are 1 + the drawn values).
FAMILIES = [
    Family("gemma", "gemma", "GemmaForCausalLM", "GemmaConfig", GEMMA, sentencepiece=True,
           gains={"o_proj": 16.0, "down_proj": 16.0}, seed=1),
    Family("gemma2", "gemma2", "Gemma2ForCausalLM", "Gemma2Config",
           dict(GEMMA, attn_logit_softcapping=5.0, final_logit_softcapping=30.0, sliding_window=8),
           sentencepiece=True,
           gains={"q_proj": 2.0, "k_proj": 2.0, "post_attention_layernorm": 50.0, "post_feedforward_layernorm": 50.0}),
    Family("granite", "granite", "GraniteForCausalLM", "GraniteConfig",
           dict(SMALL, tie_word_embeddings=False, attention_bias=True, mlp_bias=True, embedding_multiplier=2.0,
                residual_multiplier=0.5, attention_multiplier=0.2, logits_scaling=2.0),
           head_gain=8.0),  # the usual margins, once the logits are divided by logits_scaling
]
