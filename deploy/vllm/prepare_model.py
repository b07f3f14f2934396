"""Converts the packaged SmolLM2-135M-Instruct GGUF into the safetensors model directory vLLM serves.

Run it with the `.venv-vllm` interpreter, so config.json is written by the transformers that vLLM reads
it with. Cached: an existing directory is reused. Prints the directory.

    .venv-vllm/bin/python deploy/vllm/prepare_model.py [--out var/models/smollm2-hf]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "models" / "smollm2-hf")
    args = parser.parse_args()
    # Everything is on disk; a lookup on the hub would only hang on this network.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # heedful is not installed in .venv-vllm; the conversion code is shared with the embedded backend.
    sys.path.insert(0, str(ROOT))
    from memory.llm.embedded import convert_packaged_gguf

    start = time.monotonic()
    out = convert_packaged_gguf(args.out.resolve())
    print(f"[prepare_model] {out} ready in {time.monotonic() - start:.1f} s", file=sys.stderr)
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
