"""Which conventions the evaluation and training follow: obliviate's own (docs/metrics.md, the
default) or open-unlearning's, reproduced item for item (``eval.protocol`` / ``trainer.protocol``).

Every difference between the two is a named flag here, so the code that depends on one reads
``protocol.mask_id(...)`` rather than comparing names, and docs/metrics.md ("Parity with
open-unlearning") lists the same flags with their measured effect.
"""

from __future__ import annotations

from dataclasses import dataclass

from obliviate.errors import ConfigError

OBLIVIATE = "obliviate"
OPEN_UNLEARNING = "open-unlearning"
PROTOCOLS = (OBLIVIATE, OPEN_UNLEARNING)


@dataclass(frozen=True)
class Protocol:
    name: str = OBLIVIATE

    @property
    def open_unlearning(self) -> bool:
        return self.name == OPEN_UNLEARNING

    def mask_id(self, loaded_pad_id: int) -> int | None:
        """The token id hidden from attention wherever it occurs, or None (padding only).
        open-unlearning's mask is (input_ids != pad_id) with its pad = the tokenizer's pad token
        or else its EOS (``loaded_pad_id``): with pad = end-of-turn (SmolLM2, Llama-3) that
        hides the turn ends inside every prompt, in training and evaluation alike."""
        return loaded_pad_id if self.open_unlearning else None

    @property
    def generation_per_split(self) -> bool:
        """Greedy generation split by split in data order, ``batch_size`` prompts per batch (the
        batches open-unlearning forms), instead of one length-sorted pool of all splits."""
        return self.open_unlearning

    @property
    def decoded_texts(self) -> bool:
        """ROUGE on texts decoded with ``clean_up_tokenization_spaces=True`` (generation and
        ground truth, the latter decoded from the answer's token ids, not the raw answer)."""
        return self.open_unlearning

    @property
    def es_no_match_is_1_over_n(self) -> bool:
        """Extraction strength 1/N (not 0) when even the last answer token is mispredicted."""
        return self.open_unlearning

    @property
    def epsilon(self) -> float:
        """The 1e-10 open-unlearning adds to the denominators of the truth ratio, its
        closer-to-1 aggregate and the normalised probability (0 = the exact formulas)."""
        return 1e-10 if self.open_unlearning else 0.0


def protocol_from(value: object, key: str) -> Protocol:
    """The protocol named by config key ``key``; a clear error for anything else."""
    name = OBLIVIATE if value is None else value
    if name not in PROTOCOLS:
        raise ConfigError(f"{key}={value!r} is not a protocol; use one of {', '.join(PROTOCOLS)}")
    return Protocol(str(name))
