"""The selector head's training-side module: the exported ONNX graph scores as the torch module does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest

from selector.head import HeadConfig, PairHead, export_head, predict, train_head


@pytest.mark.parametrize("rank", [0, 4])
def test_exported_head_matches_torch_and_learns_an_interaction(rank: int, tmp_path: Path) -> None:
    """Relevant when the prompt's first coordinate and the memory's second share a sign: an interaction
    across dimensions, which only the bilinear term (rank > 0) can express."""
    rng = np.random.default_rng(0)
    n, dim = 2000, 16
    prompts = rng.normal(size=(n, dim)).astype(np.float32)
    memories = rng.normal(size=(n, dim)).astype(np.float32)
    labels = (prompts[:, 0] * memories[:, 1] > 0).astype(int)
    head = train_head(prompts, memories, labels, np.ones(n, dtype=np.float32), HeadConfig(rank=rank, epochs=20))
    scores = predict(head, prompts, memories)
    accuracy = float(((scores > 0.5) == labels).mean())
    if rank:
        assert accuracy > 0.9
    else:
        assert accuracy < 0.7  # [u, v, u*v, |u-v|] pairs dimension i of u with dimension i of v only

    export_head(head, tmp_path / "head.onnx")
    session = ort.InferenceSession(str(tmp_path / "head.onnx"), providers=["CPUExecutionProvider"])
    (onnx_scores,) = session.run(["scores"], {"prompt": prompts[:1], "memories": memories[:50]})
    np.testing.assert_allclose(onnx_scores, predict(head, np.repeat(prompts[:1], 50, axis=0), memories[:50]), atol=1e-5)
    assert isinstance(head, PairHead) and head.rank == rank
