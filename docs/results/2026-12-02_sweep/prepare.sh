#!/usr/bin/env bash
# The target and retain models the sweep starts from and compares against: model=tiny-bytes
# (2-layer Llama of width 32 built in code, byte tokenizer) finetuned on the built-in fictitious authors
# (5 authors x 20 QA; forget40 = the last 2 authors), and their evaluations (the retain model's
# TOFU_EVAL.json is the sweep's retain log). Run from the repository root.
set -euo pipefail
COMMON="model=tiny-bytes tofu_data=builtin trainer.args.num_train_epochs=12 trainer.args.learning_rate=3e-3 trainer.args.per_device_train_batch_size=16 trainer.args.gradient_accumulation_steps=1 trainer.args.warmup_epochs=0.5"
EVAL="model=tiny-bytes tofu_data=builtin forget_split=forget40 holdout_split=holdout40 eval.utility_items=8 eval.max_new_tokens=32"
obliviate train --config-name=train.yaml experiment=finetune/tofu/default train_split=full $COMMON task_name=sweep_target
obliviate train --config-name=train.yaml experiment=finetune/tofu/default train_split=retain60 $COMMON task_name=sweep_retain
obliviate eval experiment=eval/tofu/default $EVAL model.model_args.pretrained_model_name_or_path=saves/finetune/sweep_retain task_name=sweep_retain
obliviate eval experiment=eval/tofu/default $EVAL model.model_args.pretrained_model_name_or_path=saves/finetune/sweep_target retain_logs_path=saves/eval/sweep_retain/TOFU_EVAL.json task_name=sweep_target
