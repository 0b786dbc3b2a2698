"""``obliviate demo [options]`` and ``obliviate compare ITEM... [key=value ...]``."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

from obliviate.errors import ConfigError

DEMO_HELP = """\
Finetune, unlearn, evaluate and compare, end to end, on a real pretrained model
(SmolLM2-135M-Instruct from PyPI) and built-in fictitious authors: no Hub, no GPU needed.
Defaults finish in about 10 minutes on 2 CPU cores; a second run reuses every cached stage.

Scale up, e.g.:  obliviate demo --authors 10 --epochs 5 --unlearn-epochs 5 --utility-items 20
Real TOFU on a GPU: obliviate demo --data ../shared/tofu --forget-split forget10 \\
    --utility-items 0 --max-new-tokens 200 --device cuda --out saves/demo_tofu
"""

COMPARE_HELP = """\
The guide's method-comparison loop as one command: for each METHOD, unlearn (unlearn.yaml,
experiment=unlearn/tofu/default, task_name=tofu_METHOD_<forget_split>) and evaluate into
<run>/evals; for each FOLDER, read its TOFU_EVAL.json. Writes comparison.md/.json/.png.
Runs and evaluations already on disk are reused (pass overwrite=true to redo them).

  obliviate compare SimNPO NPO GradDiff GradAscent forget_split=forget10 retain_split=retain90 \\
      model.model_args.pretrained_model_name_or_path=open-unlearning/tofu_Llama-3.2-1B-Instruct_full \\
      retain_logs_path=saves/eval/tofu_Llama-3.2-1B-Instruct_retain90/TOFU_EVAL.json
  obliviate compare saves/demo/evals/target saves/demo/evals/SimNPO retain_logs_path=saves/demo/evals/retain/TOFU_EVAL.json
"""


PLAIN_OPTIONS = (
    ("--authors", "builtin data: authors"),
    ("--forget-authors", "builtin data: authors to forget, the last ones"),
    ("--forget-split", "other data: the TOFU forget split"),
    ("--seed", "seed of the data, every training stage and the retain pairing"),
    ("--epochs", "finetuning epochs, target and retain model"),
    ("--lr", "finetuning learning rate"),
    ("--batch-size", "finetuning batch"),
    ("--unlearn-epochs", "unlearning epochs, every method"),
    ("--unlearn-lr", "unlearning learning rate, every method"),
    ("--unlearn-batch-size", "unlearning batch (forget items; each paired with a retain item)"),
    ("--warmup-epochs", "learning-rate warm-up of every training stage, in epochs"),
    ("--max-steps", "cap every training stage at N optimizer steps (smoke runs; -1 = the epochs)"),
    ("--max-new-tokens", "greedy answer length for ROUGE (TOFU uses 200)"),
    ("--eval-batch-size", "teacher-forced scoring batch"),
    ("--generation-batch-size", "greedy generation batch"),
)


def demo_parser() -> argparse.ArgumentParser:
    from obliviate.demo.pipeline import DEFAULT_METHODS, DemoOptions

    d = DemoOptions()
    p = argparse.ArgumentParser(
        prog="obliviate demo",
        description=DEMO_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--benchmark", choices=("tofu", "muse"), default="tofu",
        help="tofu (default) or muse: the MUSE demo, with its own options (docs/muse.md)",
    )  # fmt: skip
    p.add_argument("--out", type=Path, default=d.out, help="output folder (default %(default)s)")
    p.add_argument("--model", default=d.model, help="model config name (default %(default)s)")
    p.add_argument(
        "--data",
        default=d.data,
        help="builtin (generated authors), a folder of TOFU JSON lines, or a Hub id (default %(default)s)",
    )
    # Options that map one to one onto a DemoOptions field: type and default come from the field.
    for flag, text in PLAIN_OPTIONS:
        default = getattr(d, flag[2:].replace("-", "_"))
        p.add_argument(
            flag, type=type(default), default=default, help=f"{text} (default %(default)s)"
        )
    p.add_argument(
        "--method-lr", action="append", default=[], metavar="METHOD=LR",
        help="unlearning lr of one method instead of --unlearn-lr (repeatable; default "
        + (", ".join(f"{m}={lr:g}" for m, lr in d.method_lr.items()) or "none") + ")",
    )  # fmt: skip
    p.add_argument(
        "--methods", default=",".join(DEFAULT_METHODS),
        help="comma-separated unlearning methods (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--eval-items", type=int, default=d.eval_items or 0,
        help="evaluate the first N items of each split; 0 = all (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--utility-items", type=int, default=d.utility_items or 0,
        help="of those, at most N retain / real-author / world-fact items for model_utility; 0 = all "
        "(default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--privleak", action="store_true",
        help="also score the holdout split for privleak (the membership-attack metric)",
    )  # fmt: skip
    p.add_argument("--device", default=d.device, choices=("auto", "cpu", "cuda"))
    p.add_argument(
        "--bf16", default=d.bf16, choices=("auto", "on", "off"),
        help="bfloat16 autocast in training and evaluation; auto = on a GPU or a CPU with native bf16 (default %(default)s)",
    )  # fmt: skip
    p.add_argument(
        "--fresh", action="store_true", help="rerun every stage, ignoring cached results"
    )
    p.add_argument(
        "--set", dest="extra", action="append", default=[], metavar="KEY=VALUE",
        help="extra Hydra override for every stage (repeatable)",
    )  # fmt: skip
    return p


def demo_main(argv: list[str]) -> int:
    bench = argparse.ArgumentParser(add_help=False)
    bench.add_argument("--benchmark", choices=("tofu", "muse"), default="tofu")
    chosen, rest = bench.parse_known_args(argv)
    if chosen.benchmark == "muse":  # its own options: obliviate demo --benchmark muse --help
        from obliviate.demo.muse import muse_demo_main

        return muse_demo_main(rest)
    args = demo_parser().parse_args(rest)
    if args.device == "cpu":
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before torch looks for a GPU
    from obliviate.demo.pipeline import DemoOptions, run_demo

    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("--device cuda, but no CUDA device is visible; use --device cpu")
    fields = {f.name for f in dataclasses.fields(DemoOptions)}
    values = {k: v for k, v in vars(args).items() if k in fields}
    values.update(
        methods=tuple(m.strip() for m in args.methods.split(",") if m.strip()),
        eval_items=args.eval_items or None,  # 0 on the command line = all
        utility_items=args.utility_items or None,
        extra=list(args.extra),
        method_lr={**DemoOptions().method_lr, **parse_method_lr(args.method_lr)},
    )
    opts = DemoOptions(**values)
    run_demo(opts)
    return 0


def parse_method_lr(items: list[str]) -> dict[str, float]:
    """``["NPO=5e-5", ...]`` -> ``{"NPO": 5e-05}``; a malformed item is one error line."""
    out: dict[str, float] = {}
    for item in items:
        method, _, value = item.partition("=")
        try:
            out[method.strip()] = float(value)
        except ValueError:
            raise ConfigError(f"--method-lr {item!r}: use METHOD=LR, e.g. NPO=5e-5") from None
    return out


def compare_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(
        prog="obliviate compare",
        description=COMPARE_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "items", nargs="*", help="METHOD names, evaluation FOLDERs, and key=value overrides"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write (default saves/compare/<forget_split>)",
    )
    args = p.parse_args(argv)
    from obliviate.demo.pipeline import run_compare

    overrides = [a for a in args.items if "=" in a and not Path(a).exists()]
    items = [a for a in args.items if a not in overrides]
    run_compare(items, overrides, args.out)
    return 0


def main(argv: list[str]) -> int:
    """``argv[0]`` is ``demo`` or ``compare``. User errors: one ``error:`` line, exit 2."""
    cmd, rest = argv[0], argv[1:]
    try:
        return demo_main(rest) if cmd == "demo" else compare_main(rest)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
