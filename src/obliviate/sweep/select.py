"""Rules that pick one point of a sweep, each stated in words next to its choice.

A row is a flat dict of metric name -> value (``None`` when the evaluation has no such number)
plus ``name``. ``target`` is the row of the model before unlearning, ``retain`` that of the
model never trained on the forget set; either may be None.

Rules (``obliviate compare --rule``):

``default``         TOFU: the highest forget_quality among points whose model_utility is at
                    least 95% of the target's (ties: higher model_utility). MUSE: the lowest
                    mean of forget verbmem / knowmem ROUGE among points whose retain knowmem
                    ROUGE is at least 95% of the target's (ties: privleak closest to 0).
``hmean``           the highest harmonic mean of memorisation, privacy and utility scores, the
                    aggregate of the OpenUnlearning paper (arXiv 2506.12618; its maintainers:
                    "the harmonic mean of Memorization, Privacy, and Utility"), from the
                    metrics obliviate computes (see :func:`hmean_scores`).
``forget_quality``  the highest forget_quality, whatever the utility.
``max:EXPR``, ``min:EXPR``  the point that maximises / minimises an arithmetic expression
                    over metric names, e.g. ``max:forget_quality*(model_utility>=0.5)``
                    (evaluated by :func:`evaluate_expression`, never by ``eval``).
"""

from __future__ import annotations

import ast
import math
import operator
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from obliviate.errors import ConfigError

UTILITY_FLOOR = 0.95  # share of the target's utility a point must keep (default rule)
MUSE_KEYS = ("forget_verbmem_ROUGE", "forget_knowmem_ROUGE", "retain_knowmem_ROUGE")
RULES = ("default", "hmean", "forget_quality", "max:EXPR", "min:EXPR")

Row = dict[str, Any]


@dataclass
class Selection:
    index: int | None  # the selected row, or None when no row qualifies
    rule: str  # the rule, in words
    notes: list[str] = field(default_factory=list)  # what happened (fallbacks, missing data)
    scores: list[float | None] | None = None  # the score each row got, when the rule has one


def select(rows: list[Row], rule: str = "default", target: Row | None = None,
           retain: Row | None = None) -> Selection:  # fmt: skip
    """Apply ``rule`` (one of :data:`RULES`) to ``rows``."""
    if rule == "default":
        return muse_default(rows, target) if is_muse(rows) else tofu_default(rows, target)
    if rule == "hmean":
        return hmean_rule(rows, target, retain)
    if rule == "forget_quality":
        return best_of(rows, [r.get("forget_quality") for r in rows], "the highest forget_quality")
    if rule.startswith(("max:", "min:")):
        sign, expr = rule[:3], rule[4:]
        scores = [evaluate_expression(expr, r) for r in rows]
        if sign == "min":
            return best_of(rows, [None if s is None else -s for s in scores],
                           f"the lowest value of {expr}", shown=scores)  # fmt: skip
        return best_of(rows, scores, f"the highest value of {expr}")
    raise ConfigError(f"--rule {rule!r} is not a rule; use one of {', '.join(RULES)}")


def is_muse(rows: list[Row]) -> bool:
    return any(r.get(k) is not None for r in rows for k in MUSE_KEYS)


def best_of(rows: list[Row], scores: list[float | None], rule: str,
            shown: list[float | None] | None = None) -> Selection:  # fmt: skip
    """The row with the highest score (first one on ties); rows without a score are skipped."""
    ok = [i for i, s in enumerate(scores) if s is not None and not math.isnan(s)]
    sel = Selection(max(ok, key=lambda i: scores[i]) if ok else None, rule, [], shown or scores)
    _note_tie(sel, rows, scores)
    if len(ok) < len(rows):
        sel.notes.append(f"{len(rows) - len(ok)} point(s) without a value were left out")
    if not ok:
        sel.notes.append("no point has a value: nothing selected")
    return sel


def _note_tie(sel: Selection, rows: list[Row], scores: list) -> None:
    """Say so when the rule cannot tell the best points apart (the first listed is marked)."""
    if sel.index is None:
        return
    tied = [
        rows[i]["name"] for i, s in enumerate(scores) if s is not None and s == scores[sel.index]
    ]
    if len(tied) > 1:
        sel.notes.append(
            f"{len(tied)} points tie under this rule ({', '.join(tied)}): the first listed is marked"
        )


def tofu_default(rows: list[Row], target: Row | None) -> Selection:
    floor = _floor(target, "model_utility")
    if floor is None:
        sel = best_of(rows, [r.get("forget_quality") for r in rows], "the highest forget_quality")
        sel.notes.append("no target model_utility (pass --target <target's evaluation folder>), "
                         "so there was no utility floor: the highest forget_quality overall")  # fmt: skip
        return sel
    rule = (f"the highest forget_quality among points with model_utility >= "
            f"{UTILITY_FLOOR:.0%} of the target's ({floor:.4g}); ties: higher model_utility")  # fmt: skip
    scores = [
        (r["forget_quality"], r["model_utility"])
        if _num(r.get("forget_quality"))
        and _num(r.get("model_utility"))
        and r["model_utility"] >= floor
        else None
        for r in rows
    ]
    return _pick(rows, scores, rule, "model_utility", floor)


def muse_default(rows: list[Row], target: Row | None) -> Selection:
    floor = _floor(target, "retain_knowmem_ROUGE")
    mem = [_mean(r.get("forget_verbmem_ROUGE"), r.get("forget_knowmem_ROUGE")) for r in rows]
    leak = [abs(r["privleak"]) if _num(r.get("privleak")) else math.inf for r in rows]
    keep = [floor is None or (_num(r.get("retain_knowmem_ROUGE")) and r["retain_knowmem_ROUGE"] >= floor)
            for r in rows]  # fmt: skip
    scores = [
        (-m, -lk) if m is not None and k else None for m, lk, k in zip(mem, leak, keep, strict=True)
    ]
    if floor is None:
        rule = "the lowest mean forget verbmem/knowmem ROUGE; ties: privleak closest to 0"
        sel = _pick(rows, scores, rule, "retain_knowmem_ROUGE", None)
        sel.notes.append(
            "no target retain_knowmem_ROUGE (pass --target), so there was no utility floor"
        )
        return sel
    rule = (f"the lowest mean forget verbmem/knowmem ROUGE among points with retain_knowmem_ROUGE >= "
            f"{UTILITY_FLOOR:.0%} of the target's ({floor:.4g}); ties: privleak closest to 0")  # fmt: skip
    return _pick(rows, scores, rule, "retain_knowmem_ROUGE", floor)


def _pick(rows: list[Row], scores: list, rule: str, utility: str, floor: float | None) -> Selection:
    ok = [i for i, s in enumerate(scores) if s is not None]
    if ok:
        sel = Selection(max(ok, key=lambda i: scores[i]), rule)
        _note_tie(sel, rows, scores)
        return sel
    best = max((i for i, r in enumerate(rows) if _num(r.get(utility))),
               key=lambda i: rows[i][utility], default=None)  # fmt: skip
    closest = (
        f"; the closest is {rows[best]['name']} ({utility} {rows[best][utility]:.4g})"
        if best is not None
        else ""
    )
    return Selection(
        None, rule, [f"no point reached {utility} >= {floor:.4g}: nothing selected{closest}"]
    )


def hmean_scores(row: Row, target: Row | None, retain: Row | None) -> dict[str, float | None]:
    """Memorisation, privacy, utility and their harmonic mean ``agg`` (OpenUnlearning's
    aggregate, from the numbers obliviate has; a component with no input is None and left out).

    TOFU: memorisation = HM(1 - extraction_strength, 1 - exact_memorization,
    1 - forget_Q_A_PARA_Prob, forget_truth_ratio) -- obliviate's forget_truth_ratio is already
    1 when true and false answers are equally likely; privacy = 1 - |privleak| / 100 (clipped
    to [0, 1]; privleak is relative to the retain model); utility = model_utility / target's
    (capped at 1; the paper's fluency classifier is not part of obliviate).
    MUSE: memorisation = HM(1 - forget_verbmem_ROUGE, 1 - forget_knowmem_ROUGE); privacy as
    above; utility = retain_knowmem_ROUGE / target's.
    """
    muse = any(row.get(k) is not None for k in MUSE_KEYS)
    if muse:
        mem_parts = [_inv(row.get("forget_verbmem_ROUGE")), _inv(row.get("forget_knowmem_ROUGE"))]
        util_key = "retain_knowmem_ROUGE"
    else:
        mem_parts = [_inv(row.get("extraction_strength")), _inv(row.get("exact_memorization")),
                     _inv(row.get("forget_Q_A_PARA_Prob")), row.get("forget_truth_ratio")]  # fmt: skip
        util_key = "model_utility"
    mem = harmonic_mean([p for p in mem_parts if _num(p)])
    leak = row.get("privleak")
    priv = min(1.0, max(0.0, 1 - abs(leak) / 100)) if _num(leak) else None
    util = row.get(util_key)
    ref = (target or {}).get(util_key)
    if _num(util) and _num(ref) and ref > 0:
        util = min(1.0, util / ref)
    parts = [p for p in (mem, priv, util) if _num(p)]
    return {"memorisation": mem, "privacy": priv, "utility": util,
            "agg": harmonic_mean(parts) if parts else None}  # fmt: skip


def hmean_rule(rows: list[Row], target: Row | None, retain: Row | None) -> Selection:
    parts = [hmean_scores(r, target, retain) for r in rows]
    sel = best_of(rows, [p["agg"] for p in parts],
                  "the highest harmonic mean of memorisation, privacy and utility (OpenUnlearning's aggregate)")  # fmt: skip
    for name in ("privacy", "utility"):
        if all(p[name] is None for p in parts):
            sel.notes.append(f"no {name} score for any point (left out of the mean)")
    if target is None:
        sel.notes.append(
            "no target: utility is the raw utility metric, not relative to the target's"
        )
    return sel


def harmonic_mean(values: list[float]) -> float | None:
    """n / sum(1/v); 0 as soon as one value is 0 (a collapse in one part is not averaged away)."""
    if not values:
        return None
    if any(v <= 0 for v in values):
        return 0.0
    return len(values) / sum(1 / v for v in values)


# ---- user expressions, evaluated on a small whitelist of AST nodes -------------------------

_BINARY: dict[type, Callable] = {
    ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
    ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod,
}  # fmt: skip
_COMPARE: dict[type, Callable] = {
    ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.Eq: operator.eq, ast.NotEq: operator.ne,
}  # fmt: skip
_FUNCTIONS: dict[str, Callable] = {
    "abs": abs, "min": min, "max": max, "log": math.log, "log10": math.log10,
    "exp": math.exp, "sqrt": math.sqrt,
}  # fmt: skip
# A metric name: an identifier, or identifiers joined by "/" (attack/<name>/<metric>); not the
# "e" of a number such as 1e-3 (no name starts right after a digit or a dot).
_NAME = re.compile(r"(?<![0-9.])[A-Za-z_][A-Za-z0-9_]*(?:/[A-Za-z_][A-Za-z0-9_]*)*")


def evaluate_expression(expr: str, row: Row) -> float | None:
    """The value of ``expr`` for ``row``: numbers, metric names (also ``attack/x/y`` ones),
    + - * / ** %, comparisons (1.0 or 0.0), and abs min max log log10 exp sqrt. None when a
    metric it names has no value for this row or the arithmetic fails (e.g. log of 0)."""
    names: dict[str, str] = {}

    def placeholder(m: re.Match) -> str:
        word = m.group(0)
        if word in _FUNCTIONS:
            return word
        if "/" in word and word not in row:  # a division of metric names, not an attack column
            return "/".join(placeholder(re.match(r".*", part)) for part in word.split("/"))
        return names.setdefault(word, f"_m{len(names)}")

    try:
        tree = ast.parse(_NAME.sub(placeholder, expr.strip()), mode="eval")
    except SyntaxError as e:
        raise ConfigError(f"--rule expression {expr!r} does not parse ({e.msg})") from None
    values = {ph: row.get(word) for word, ph in names.items()}
    unknown = [w for w in names if w not in row]
    if unknown:
        raise ConfigError(f"--rule expression {expr!r} names unknown metric(s): {', '.join(unknown)}; "
                          f"known: {', '.join(sorted(k for k in row if k != 'name'))}")  # fmt: skip
    if any(not _num(v) for v in values.values()):
        return None
    try:
        return float(_eval(tree.body, values, expr))
    except (ArithmeticError, ValueError):
        return None


def _eval(node: ast.AST, values: dict[str, float], expr: str) -> float:
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, (int, float))
        and not isinstance(node.value, bool)
    ):
        return float(node.value)
    if isinstance(node, ast.Name) and node.id in values:
        return float(values[node.id])
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        return _BINARY[type(node.op)](
            _eval(node.left, values, expr), _eval(node.right, values, expr)
        )
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _eval(node.operand, values, expr)
        return -v if isinstance(node.op, ast.USub) else v
    if isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in _COMPARE:
        left, right = _eval(node.left, values, expr), _eval(node.comparators[0], values, expr)
        return float(_COMPARE[type(node.ops[0])](left, right))
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in _FUNCTIONS
            and not node.keywords and node.args):  # fmt: skip
        return float(_FUNCTIONS[node.func.id](*(_eval(a, values, expr) for a in node.args)))
    raise ConfigError(
        f"--rule expression {expr!r}: only numbers, metric names, + - * / ** %, one comparison "
        f"and {', '.join(_FUNCTIONS)} are allowed (found {type(node).__name__})"
    )


def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _inv(v: Any) -> float | None:
    return 1.0 - v if _num(v) else None


def _mean(*vs: Any) -> float | None:
    ok = [v for v in vs if _num(v)]
    return sum(ok) / len(ok) if ok else None


def _floor(target: Row | None, key: str) -> float | None:
    v = (target or {}).get(key)
    return UTILITY_FLOOR * v if _num(v) else None
