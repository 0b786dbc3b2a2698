#!/usr/bin/env bash
# SimNPO on TOFU forget10 with Llama-3.2-1B-Instruct: the user guide's steps 2 and 3, verbatim.
#
#   1. unlearn: start from open-unlearning/tofu_Llama-3.2-1B-Instruct_full (Llama-3.2-1B-Instruct
#      finetuned on all of TOFU), forget forget10 (400 QA pairs) while keeping retain90, 20 epochs
#      at an effective batch of 2 x 8 = 16 (500 optimizer steps), learning rate 5e-5;
#      writes saves/unlearn/tofu_SimNPO_forget10_v1/
#   2. evaluate the result on TOFU; writes saves/unlearn/tofu_SimNPO_forget10_v1/evals/
#      (TOFU_EVAL.json, TOFU_SUMMARY.json, eval_config.yaml, eval_receipt.json)
#
# Needs a CUDA GPU (about 12 GB at these settings) and Hugging Face Hub access: the model
# open-unlearning/tofu_Llama-3.2-1B-Instruct_full and the dataset locuslab/TOFU are downloaded.
# Offline, each step stops with one `error:` line saying what could not be loaded.
#
# Usage, from the repository root:
#   bash run_simnpo_tofu_1b.sh                              # GPU 0
#   CUDA_VISIBLE_DEVICES=4 bash run_simnpo_tofu_1b.sh       # another GPU
#   bash run_simnpo_tofu_1b.sh overwrite=true trainer.method_args.beta=10.0
#       (extra arguments are Hydra overrides added to the training command only; overwrite=true
#        replaces an earlier run folder of the same name — the evaluation refuses to overwrite
#        old results without it, so rerun the evaluation by hand with overwrite=true then)
#
# forget_quality needs the retain model's evaluation log (the KS test compares this model's
# per-item forget truth ratios with a model trained only on retain90). Without it the
# evaluation reports forget_quality as null and prints how to make the log. With it (used by the
# evaluations every 100 steps during training and by the final one):
#   RETAIN_LOGS_PATH=saves/eval/tofu_Llama-3.2-1B-Instruct_retain90/TOFU_EVAL.json \
#       bash run_simnpo_tofu_1b.sh
# (open-unlearning's published retain90 TOFU_EVAL.json works as well.)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")"
export CUDA_VISIBLE_DEVICES="${CUDA_VISIBLE_DEVICES:-0}"

retain_log=()
if [ -n "${RETAIN_LOGS_PATH:-}" ]; then
    retain_log=("retain_logs_path=${RETAIN_LOGS_PATH}")
fi

# Step 2: SimNPO unlearning.
HYDRA_FULL_ERROR=1 python src/train.py \
    --config-name=unlearn.yaml \
    experiment=unlearn/tofu/default \
    trainer=SimNPO \
    forget_split=forget10 \
    retain_split=retain90 \
    task_name=tofu_SimNPO_forget10_v1 \
    model.model_args.pretrained_model_name_or_path=open-unlearning/tofu_Llama-3.2-1B-Instruct_full \
    trainer.args.learning_rate=5e-5 \
    trainer.args.num_train_epochs=20 \
    trainer.args.per_device_train_batch_size=2 \
    trainer.args.gradient_accumulation_steps=8 \
    trainer.args.eval_strategy=steps \
    +trainer.args.eval_steps=100 \
    trainer.args.save_strategy=steps \
    +trainer.args.save_steps=100 \
    trainer.args.logging_steps=10 \
    ${retain_log[@]+"${retain_log[@]}"} \
    "$@"

# Step 3: evaluate.
python src/eval.py \
    --config-name=eval.yaml \
    experiment=eval/tofu/default \
    forget_split=forget10 \
    holdout_split=holdout10 \
    model=Llama-3.2-1B-Instruct \
    task_name=tofu_SimNPO_forget10_v1 \
    model.model_args.pretrained_model_name_or_path=saves/unlearn/tofu_SimNPO_forget10_v1 \
    paths.output_dir=saves/unlearn/tofu_SimNPO_forget10_v1/evals \
    ${retain_log[@]+"${retain_log[@]}"}
