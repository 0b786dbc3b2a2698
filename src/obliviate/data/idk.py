"""Refusal ("I don't know") answers for IdkDPO: the package's own sentences, or a user's file.

Each forget question is given one refusal, drawn once from the run's seed, so the preferred
answers (and their reference log-probs, computed before training) stay fixed for the run.
A user file (``trainer.method_args.idk_path``) holds one sentence per line; blank lines and
lines starting with ``#`` are skipped; a line that is a JSON string, or a JSON object with a
``text`` or ``answer`` field, is read as that value.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from obliviate.errors import ConfigError

# Written for this project: varied wording, lengths and registers, all declining to answer.
REFUSALS: tuple[str, ...] = (
    "I don't know.",
    "I'm afraid I don't know the answer to that.",
    "I have no information about that.",
    "That isn't something I know about.",
    "I can't answer that; I don't have the details.",
    "I'm not able to say, since I don't know.",
    "Sorry, I don't have any knowledge of that.",
    "I really couldn't tell you.",
    "I have no idea, I'm afraid.",
    "Unfortunately, that is outside what I know.",
    "I don't have an answer for that question.",
    "I'm not familiar with that.",
    "Nothing I know lets me answer that.",
    "I'd only be guessing, so I'd rather say I don't know.",
    "I don't recall anything about that.",
    "I have no reliable information on this.",
    "That's a question I can't answer.",
    "I'm unsure, and I don't want to make something up.",
    "I don't know anything about that topic.",
    "I can't help with that one; I simply don't know.",
    "My knowledge doesn't cover that.",
    "I'm sorry, but I can't say.",
    "I wouldn't know.",
    "I don't have the facts needed to answer that.",
    "I'm drawing a blank on that.",
    "That's unknown to me.",
    "I cannot provide an answer, because I don't know it.",
    "I have not come across that information.",
    "Honestly, I don't know.",
    "I don't have any details to share about that.",
    "I'm not in a position to answer that.",
    "I lack the information to respond to that.",
    "I'm not aware of the answer.",
    "Answering that is beyond me; I don't know it.",
    "There's nothing I can tell you about that.",
    "I don't have enough knowledge to answer.",
    "No idea, sorry.",
    "I couldn't say for sure, so I won't guess.",
    "I'm not sure about that at all.",
    "I don't possess that information.",
    "That falls outside of what I know.",
    "I have no record of that.",
    "I'm not knowledgeable about that.",
    "I can't give you an answer to that.",
    "I'm uncertain and can't answer.",
    "Unfortunately, I don't know anything about it.",
    "I don't have that information available.",
    "Sorry, that's beyond what I can answer.",
    "I'm afraid I can't help with that question.",
    "I simply don't have an answer.",
    "I haven't learned anything about that.",
    "That is not something I can speak to.",
    "I don't know who or what that refers to.",
    "I'm not able to provide that information.",
    "I don't know, and I'd rather not speculate.",
    "I can't recall any facts about that.",
    "That's not a question I'm able to answer.",
    "I'm sorry, I have no knowledge of this.",
    "I don't have a clue.",
    "I'm not certain of the answer, so I can't say.",
)


def load_refusals(path: str | Path | None = None) -> list[str]:
    """The refusal sentences: the built-in ones, or those of the file at ``path``."""
    if path is None:
        return list(REFUSALS)
    p = Path(path).expanduser()
    if not p.is_file():
        raise ConfigError(f"refusal file {str(path)!r} does not exist")
    out = []
    for line in p.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        out.append(_sentence(line))
    if not out:
        raise ConfigError(f"refusal file {str(path)!r} holds no sentences")
    return out


def _sentence(line: str) -> str:
    if line[0] in '{"':
        try:
            value: Any = json.loads(line)
        except json.JSONDecodeError:
            return line
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, dict):
            for key in ("text", "answer"):
                if isinstance(value.get(key), str):
                    return value[key].strip()
    return line


def refusal_rows(
    rows: list[dict[str, Any]], refusals: list[str], seed: int
) -> list[dict[str, Any]]:
    """``rows`` with each answer replaced by a refusal, drawn with a generator seeded by ``seed``
    (never the global RNG)."""
    if not refusals:
        raise ConfigError("no refusal sentences to draw from")
    g = torch.Generator().manual_seed(int(seed))
    picks = torch.randint(len(refusals), (len(rows),), generator=g).tolist()
    return [{**row, "answer": refusals[k]} for row, k in zip(rows, picks, strict=True)]
