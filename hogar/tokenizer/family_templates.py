"""Built-in chat templates for the older families' chat fine-tunes, used where a GGUF file carries none (their
conversions often do not: the templates were written in model cards, not in tokenizer_config.json).  Each writes the
turns its fine-tune was trained on; families with no chat convention of their own (gpt2, gptneox, bloom, starcoder,
refact, mpt, whose mpt-7b-chat speaks ChatML) fall back to ChatML."""

from __future__ import annotations

# stablelm-2-zephyr-1_6b / stablelm-zephyr-3b: llama.cpp's built-in `zephyr` turns
ZEPHYR_TEMPLATE = (
    "{%- for message in messages %}"
    "{{- '<|' + message['role'] + '|>\n' + message['content'] + '<|endoftext|>\n' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|assistant|>\n' }}{%- endif %}"
)
# falcon-7b/40b-instruct: plain "User:" / "Assistant:" lines, a system message as a first line of its own
FALCON_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{- message['content'] + '\n\n' }}"
    "{%- elif message['role'] == 'user' %}{{- 'User: ' + message['content'] + '\n' }}"
    "{%- else %}{{- 'Assistant: ' + message['content'] + '\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- 'Assistant:' }}{%- endif %}"
)
# Phi-2's model card: "Instruct: <prompt>\nOutput:"
PHI2_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{- message['content'] + '\n' }}"
    "{%- elif message['role'] == 'user' %}{{- 'Instruct: ' + message['content'] + '\n' }}"
    "{%- else %}{{- 'Output: ' + message['content'] + '\n' }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- 'Output:' }}{%- endif %}"
)
# StarCoder2-15B-Instruct-v0.1's tokenizer_config.json template (its default system line kept)
STARCODER2_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if messages[0]['role'] == 'system' %}{{- messages[0]['content'] + '\n\n' }}"
    "{%- else %}{{- 'You are an exceptionally intelligent coding assistant that consistently delivers accurate and "
    "reliable responses to user instructions.\n\n' }}{%- endif %}"
    "{%- for message in messages %}"
    "{%- if message['role'] == 'user' %}{{- '### Instruction\n' + message['content'] + '\n\n' }}"
    "{%- elif message['role'] == 'assistant' %}{{- '### Response\n' + message['content'] + eos_token + '\n\n' }}"
    "{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '### Response\n' }}{%- endif %}"
)
# Baichuan2-Chat: user_token_id 195 (<reserved_106>), assistant_token_id 196 (<reserved_107>), a system text first
BAICHUAN_TEMPLATE = (
    "{%- for message in messages %}"
    "{%- if message['role'] == 'system' %}{{- message['content'] }}"
    "{%- elif message['role'] == 'user' %}{{- '<reserved_106>' + message['content'] }}"
    "{%- else %}{{- '<reserved_107>' + message['content'] + eos_token }}{%- endif %}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<reserved_107>' }}{%- endif %}"
)
FAMILY_TEMPLATES = {"stablelm": ZEPHYR_TEMPLATE, "falcon": FALCON_TEMPLATE, "phi2": PHI2_TEMPLATE,
                    "starcoder2": STARCODER2_TEMPLATE, "baichuan": BAICHUAN_TEMPLATE}
