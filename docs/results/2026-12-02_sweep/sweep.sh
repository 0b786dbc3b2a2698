#!/usr/bin/env bash
# The sweep: SimNPO, beta x learning rate (2 x 2 points), unlearning forget40 from the target of
# prepare.sh, each point evaluated with the retain model's log; then the comparison. It was run
# twice: the first call was stopped (SIGTERM) during the second point's training, the second
# call resumed it (logs: run1.log, run2.log). Run from the repository root after prepare.sh.
set -euo pipefail
obliviate train -m experiment=unlearn/tofu/default model=tiny-bytes tofu_data=builtin \
  forget_split=forget40 retain_split=retain60 holdout_split=holdout40 \
  model.model_args.pretrained_model_name_or_path=saves/finetune/sweep_target \
  trainer=SimNPO trainer.method_args.beta=0.5,2.5 trainer.args.learning_rate=1e-3,3e-3 \
  trainer.args.num_train_epochs=2 trainer.args.per_device_train_batch_size=4 \
  trainer.args.gradient_accumulation_steps=1 trainer.args.warmup_epochs=0.5 \
  retain_logs_path=saves/eval/sweep_retain/TOFU_EVAL.json eval.utility_items=8 eval.max_new_tokens=32 \
  task_name=simnpo_sweep
obliviate compare saves/sweep/simnpo_sweep --target saves/eval/sweep_target \
  retain_logs_path=saves/eval/sweep_retain/TOFU_EVAL.json --out docs/results/2026-12-02_sweep
