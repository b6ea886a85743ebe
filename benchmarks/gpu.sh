#!/usr/bin/env bash
# SmolLM2-135M-Instruct on a GPU machine: throughput and MFU in bfloat16 and float32, exact scoring in bfloat16,
# LoRA and full fine-tuning PPO on the stories stage (python -m benchmarks pretrained_gpu; its docstring lists the
# figures). Installs nothing from the network: what the machine lacks travels in .gpu/ (it ignores itself in git).
#
#   bash benchmarks/gpu.sh prepare [MODEL]   # here, with the package index reachable: fill .gpu/ (about 10 MB)
#   OUT=/some/folder bash benchmarks/gpu.sh [ARGS...]   # there, from the repository root; ARGS go to the benchmark
#
# prepare puts into .gpu/model the model's config and tokenizer (default: the pulled smollm2-135m-instruct; its
# 517 MB of weights are left out, so the run uses the same architecture with seeded random weights: speed, memory
# and MFU are the same; copy model.safetensors in too where the transfer allows, and the real weights are used), and
# into .gpu/whl the wheels (CPython 3.12, manylinux x86-64) of the project's dependencies that a GPU image with
# torch, transformers and peft typically lacks. The run installs those wheels into /tmp with pip --no-index, links
# the checkout as the `upbringing` package, checks torch.cuda.is_available() (the figures say why not, and the exit
# status is 3), and writes $OUT/pretrained_gpu.json (after each part) and $OUT/pretrained_gpu.log.
set -uo pipefail
cd "$(dirname "$0")/.."
WHEELS="pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 typing-inspection==0.4.5 typing-extensions==4.16.0
gymnasium==1.4.0 farama-notifications==0.0.6 pettingzoo==1.27.0 pymunk==7.3.1 cffi==2.1.1 pycparser==3.12
stable-baselines3==2.9.2"

if [ "${1:-}" = "prepare" ]; then
    model="${2:-${UPBRINGING_CACHE:-$HOME/.cache/upbringing}/models/smollm2-135m-instruct}"
    mkdir -p .gpu/model .gpu/whl || exit 1
    echo '*' >.gpu/.gitignore  # the folder ignores itself: it is carried to the machine, never committed
    for f in config.json generation_config.json tokenizer.json tokenizer_config.json special_tokens_map.json \
        chat_template.jinja upbringing-model.json; do
        if [ -f "$model/$f" ]; then cp "$model/$f" .gpu/model/; fi
    done
    [ -f .gpu/model/config.json ] || { echo "error: no config.json in $model (pull the model first)" >&2; exit 1; }
    # shellcheck disable=SC2086  # one word per requirement
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .gpu/whl $WHEELS || exit 1
    du -sh .gpu
    exit 0
fi

OUT="${OUT:-runs/gpu}"
mkdir -p "$OUT" /tmp/upbringing-pkg || exit 1
ln -sfn "$PWD" /tmp/upbringing-pkg/upbringing  # the repository root is the import package
site=""
py="${PYTHON:-python3}"
# the wheels are built for CPython 3.12 (the GPU image's); another Python keeps its own packages
if compgen -G ".gpu/whl/*.whl" >/dev/null && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then
    "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/upbringing-site \
        .gpu/whl/*.whl || exit 1
    site="/tmp/upbringing-site:"
fi
export PYTHONPATH="${site}/tmp/upbringing-pkg:$PWD${PYTHONPATH:+:$PYTHONPATH}"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 WANDB_MODE=disabled PYTHONUNBUFFERED=1
model=()
if [ -f .gpu/model/model.safetensors ]; then
    model=(--model .gpu/model)
elif [ -f .gpu/model/config.json ]; then
    model=(--model .gpu/model --random-weights)
fi
nvidia-smi >"$OUT/nvidia-smi.txt" 2>&1 || true
"$py" -m benchmarks pretrained_gpu --device cuda "${model[@]}" --out "$OUT/pretrained_gpu.json" "$@" \
    2>&1 | tee "$OUT/pretrained_gpu.log"
status=${PIPESTATUS[0]}
if [ "$status" -eq 0 ] && grep -q '"error"' "$OUT/pretrained_gpu.json" 2>/dev/null; then
    status=3
fi
exit "$status"
