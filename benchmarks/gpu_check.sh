#!/usr/bin/env bash
# One short GPU check for the lent device machine (see /work/.library/device): the env and PPO
# benchmarks on CUDA. Wheels for what the device image lacks travel in .whl/ (git-ignored).
set -uo pipefail
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
# Lay out the rlhf_gym package the way pyproject's package-dir maps it, without installing.
mkdir -p /tmp/shim && ln -sfn "$PWD/rlhf_gym" /tmp/shim/rlhf_gym
for d in lm toy envs agents reward_models evaluation scripts training; do ln -sfn "$PWD/$d" "rlhf_gym/$d"; done
export PYTHONPATH=/tmp/site:/tmp/shim PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
python3 benchmarks/bench_env.py --device cuda --model tiny --new-tokens 48 96 192 2>&1 | tail -12
python3 benchmarks/bench_ppo.py --device cuda 2>&1 | tail -8
python3 benchmarks/bench_lora.py --device cuda 2>&1 | tail -6
# Data-parallel LMPPO (nccl), only where the machine has at least 2 GPUs.
if [ "$(nvidia-smi -L | wc -l)" -ge 2 ]; then
    python3 benchmarks/bench_ddp.py --device cuda --nproc 2 --envs 32 --new-tokens 48 2>&1 | tail -5
fi
