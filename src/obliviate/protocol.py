"""Which conventions the evaluation and training follow: obliviate's own (docs/metrics.md, the
default) or open-unlearning's, reproduced item for item (``eval.protocol`` / ``trainer.protocol``).

Every difference between the two is a named flag here, so the code that depends on one reads
the flag rather than comparing names, and docs/metrics.md ("Parity with
open-unlearning") lists the same flags with their measured effect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from obliviate.errors import ConfigError

OBLIVIATE = "obliviate"
OPEN_UNLEARNING = "open-unlearning"
PROTOCOLS = (OBLIVIATE, OPEN_UNLEARNING)


@dataclass(frozen=True)
class Protocol:
    """One flag per difference; ``PROTOCOLS[name]`` are the two named sets (a diagnostic may
    switch single flags with ``dataclasses.replace``, as bench/parity/ablate.py does)."""

    name: str = OBLIVIATE
    #: attention_mask = (input_ids != pad_id), open-unlearning's collator: every token equal to
    #: its pad token is hidden from attention, padding or not (see ``mask_id``)
    pad_id_masked: bool = False
    #: greedy generation split by split in data order, ``batch_size`` prompts per batch (the
    #: batches open-unlearning forms), instead of one length-sorted pool of all splits
    generation_per_split: bool = False
    #: ROUGE on texts decoded with ``clean_up_tokenization_spaces=True`` (generations and ground
    #: truths, the latter decoded from the answer's token ids, not the answer as written)
    decoded_texts: bool = False
    #: cut answers so that prompt + answer fit ``data.max_length`` (open-unlearning's
    #: chat-template path tokenises the whole chat and never truncates)
    truncates: bool = True
    #: extraction strength 1/N (not 0) when even the last answer token is mispredicted
    es_no_match_is_1_over_n: bool = False
    #: training: ``warmup_epochs`` -> floor(epochs x rows / rows per optimizer step) warm-up
    #: steps (open-unlearning's trainer/__init__.py) instead of the epochs' optimizer steps, which
    #: count a last, partial step (40 rows at 6 per step: 6 instead of 7)
    warmup_floor: bool = False
    #: training: each forget item's retain partner drawn with replacement from torch's global
    #: generator whenever the item is read (open-unlearning's ForgetRetainDataset), instead of
    #: a seeded permutation per epoch that no other random draw can shift
    retain_pairs_global_rng: bool = False
    #: training: when an epoch's micro-batches are not a multiple of the accumulation, all epochs
    #: as one stream of micro-batches with open-unlearning's floor(micro-batches / accumulation)
    #: steps per epoch, the leftovers summed into the next epoch's first step (transformers 4.45),
    #: instead of a short step closing each epoch (data/stream.py)
    epochs_as_one_stream: bool = False
    #: mean answer NLL (the probabilities, truth ratios) by cross-entropy over logits laid out
    #: (B, V, T), open-unlearning's ``evaluate_probability``: on CPU in float32 that kernel
    #: loses ~1e-4 nats per token with a 49k vocabulary (obliviate.logprobs.vocab_dim_1_mean_nll)
    vocab_dim_1_nll: bool = False
    #: MUSE texts tokenised with the special tokens the tokenizer adds itself
    #: (``add_special_tokens=True``) instead of an explicit BOS: no BOS where the tokenizer adds
    #: none (the tiny byte model, SmolLM2); a text with no prefix then leaves its first token
    #: unlabelled
    specials_by_tokenizer: bool = False
    #: min-k% (TOFU and MUSE) and MUSE's extraction strength skip the last labelled token, as
    #: open-unlearning's token-wise log-probs do ("the EOS prediction": on TOFU the answer's
    #: end-of-turn, on MUSE's texts the text's last token)
    drops_last_label: bool = False
    #: added to the denominators of the truth ratio, its closer-to-1 aggregate and the
    #: normalised probability (0 = the exact formulas)
    epsilon: float = 0.0

    def mask_id(self, loaded_pad_id: int) -> int | None:
        """The token id hidden from attention wherever it occurs, or None (padding only).
        open-unlearning's pad is the tokenizer's pad token, else its EOS (``loaded_pad_id``):
        with pad = end-of-turn (SmolLM2, Llama-3) the mask hides the turn ends inside every
        prompt, in training and evaluation alike."""
        return loaded_pad_id if self.pad_id_masked else None

    def token_wise(self, values: Any) -> Any:
        """A scored text's per-token values (log-probs, predicted or label ids) as
        open-unlearning's token-wise metrics see them: without the last labelled position under
        ``drops_last_label`` (its "EOS prediction": TOFU's end-of-turn, a real token of MUSE's
        texts)."""
        return values[:-1] if self.drops_last_label else values


NAMED = {
    OBLIVIATE: Protocol(),
    OPEN_UNLEARNING: Protocol(
        OPEN_UNLEARNING,
        pad_id_masked=True,
        generation_per_split=True,
        truncates=False,
        decoded_texts=True,
        es_no_match_is_1_over_n=True,
        vocab_dim_1_nll=True,
        specials_by_tokenizer=True,
        drops_last_label=True,
        epsilon=1e-10,
        warmup_floor=True,
        retain_pairs_global_rng=True,
        epochs_as_one_stream=True,
    ),
}


def protocol_from(value: object, key: str) -> Protocol:
    """The protocol named by config key ``key``; a clear error for anything else."""
    name = OBLIVIATE if value is None else value
    if name not in PROTOCOLS:
        raise ConfigError(f"{key}={value!r} is not a protocol; use one of {', '.join(PROTOCOLS)}")
    return NAMED[str(name)]


def epoch_end_mismatch(protocol: Protocol, rows: int, batch: int, accumulation: int) -> str | None:
    """How an epoch's incomplete last accumulation makes a run differ from open-unlearning's,
    or None. transformers 4.45 (open-unlearning's pin) counts micro-batches across epochs and
    takes floor(micro-batches / accumulation) optimizer steps per epoch, so an epoch's leftovers
    join the next epoch's first step; transformers 5 closes each epoch with a short step.
    ``batch`` = rows per micro-batch over all processes. With one process and unfused
    accumulation, ``epochs_as_one_stream`` reproduces it (training.epoch_stream)."""
    if protocol.name == OBLIVIATE:  # obliviate's own protocol promises nothing here
        return None
    micro = -(-rows // batch)
    if micro % accumulation == 0:
        return None
    head = (
        f"trainer.protocol=open-unlearning: {rows} rows make {micro} micro-batches per epoch, "
        f"not a multiple of gradient_accumulation_steps={accumulation}; "
    )
    if micro < accumulation:
        return head + (
            "open-unlearning (transformers 4.45) steps at each epoch's end and wherever its count "
            f"of micro-batches across epochs reaches a multiple of {accumulation}, obliviate once "
            "per epoch: the runs differ (choose sizes that divide, docs/metrics.md)"
        )
    return head + (
        f"open-unlearning (transformers 4.45) takes {micro // accumulation} optimizer steps per "
        f"epoch and carries the last {micro % accumulation} micro-batch(es) into the next "
        f"epoch's first step, obliviate takes {-(-micro // accumulation)} here (several "
        "processes or fused accumulation): the runs part from the end of the first epoch on "
        "(choose sizes that divide, docs/metrics.md)"
    )
