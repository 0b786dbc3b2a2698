"""Chat formatting and tokenisation of one QA pair.

The prompt (system + user turn + assistant header) is rendered with the tokenizer's own chat
template and tokenised on its own; the answer and the closing end-of-turn token are tokenised
separately and appended. So the prompt ids are exactly the ones greedy generation starts from,
and the label mask (-100 on the prompt) can never be shifted by a BPE merge across the boundary.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from obliviate.errors import ConfigError

IGNORE_INDEX = -100


@dataclass(frozen=True)
class ChatFormat:
    """How a model wants its chats: from the model config's ``template`` block."""

    system_prompt: str | None
    end_of_turn: str
    date_string: str | None = None  # fixed, so scores do not change with the calendar
    pad_token: str | None = None

    @classmethod
    def from_config(cls, cfg: Any) -> ChatFormat:
        return cls(
            system_prompt=cfg.get("system_prompt"),
            end_of_turn=cfg["end_of_turn"],
            date_string=cfg.get("date_string"),
            pad_token=cfg.get("pad_token"),
        )


def prepare_tokenizer(tokenizer: Any, fmt: ChatFormat) -> Any:
    """Check the tokenizer against the format and give it a safe pad token.

    The pad token must not be one that appears inside real prompts (Llama-3's ``<|eot_id|>``
    does); padding is tracked by attention masks anyway, never by comparing ids with pad id.
    """
    if not getattr(tokenizer, "chat_template", None):
        raise ConfigError(
            f"tokenizer {getattr(tokenizer, 'name_or_path', '?')!r} has no chat template; "
            "use an instruct model's tokenizer (model.tokenizer_args.pretrained_model_name_or_path)"
        )
    eot_id = tokenizer.convert_tokens_to_ids(fmt.end_of_turn)
    if eot_id is None or eot_id == tokenizer.unk_token_id:
        raise ConfigError(
            f"end-of-turn token {fmt.end_of_turn!r} (model.template.end_of_turn) is not in the tokenizer's vocabulary"
        )
    if fmt.pad_token is not None:
        pad_id = tokenizer.convert_tokens_to_ids(fmt.pad_token)
        if pad_id is None or pad_id == tokenizer.unk_token_id:
            raise ConfigError(
                f"pad token {fmt.pad_token!r} (model.template.pad_token) is not in the tokenizer's vocabulary"
            )
        tokenizer.pad_token = fmt.pad_token
    elif tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def loaded_pad_id(tokenizer: Any) -> int:
    """The pad id open-unlearning uses for this tokenizer as loaded (before ``prepare_tokenizer``):
    its own pad token, else its end-of-sequence token."""
    pad = tokenizer.pad_token_id
    return int(tokenizer.eos_token_id if pad is None else pad)


class QAEncoder:
    """Turns (question, answer) pairs into ``input_ids`` / ``labels`` for one model's chat format."""

    def __init__(
        self,
        tokenizer: Any,
        fmt: ChatFormat,
        max_length: int | None = 512,
        mask_id: int | None = None,
    ):
        self.tokenizer = tokenizer
        self.fmt = fmt
        self.max_length = max_length
        #: a token id that evaluation batches hide from attention wherever it occurs
        #: (open-unlearning's pad id; obliviate.protocol); None = only the padding
        self.mask_id = mask_id
        self.eot_id: int = tokenizer.convert_tokens_to_ids(fmt.end_of_turn)

    def prompt_text(self, question: str) -> str:
        messages = []
        if self.fmt.system_prompt is not None:
            messages.append({"role": "system", "content": self.fmt.system_prompt})
        messages.append({"role": "user", "content": question})
        kwargs = {"date_string": self.fmt.date_string} if self.fmt.date_string else {}
        return self.tokenizer.apply_chat_template(
            messages, tokenize=False, add_generation_prompt=True, **kwargs
        )

    def prompt_ids(self, question: str) -> list[int]:
        return self.tokenizer(self.prompt_text(question), add_special_tokens=False)["input_ids"]

    def answer_ids(self, answer: str) -> list[int]:
        # Chat templates trim message content, so do the same for the answer we score.
        return self.tokenizer(answer.strip(), add_special_tokens=False)["input_ids"] + [self.eot_id]

    def encode(self, question: str, answer: str) -> dict[str, list[int]]:
        """``labels`` = -100 on prompt tokens, the token ids on answer tokens + end-of-turn."""
        prompt = self.prompt_ids(question)
        completion = self.answer_ids(answer)
        if self.max_length is None:  # open-unlearning's chat-template path never truncates
            return {
                "input_ids": prompt + completion,
                "labels": [IGNORE_INDEX] * len(prompt) + completion,
            }
        room = self.max_length - len(prompt)
        if room < 1:
            raise ConfigError(
                f"the prompt alone has {len(prompt)} tokens, more than max_length={self.max_length}; raise data.max_length"
            )
        completion = completion[:room]  # truncation cuts the answer's tail, never the prompt
        return {
            "input_ids": prompt + completion,
            "labels": [IGNORE_INDEX] * len(prompt) + completion,
        }
