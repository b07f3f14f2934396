"""The classifier's prompt encoder: trained as it is served, exported as it is trained (real MiniLM, real ONNX)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from transformers import PreTrainedModel

from memory.embeddings import Embedder
from selector.classifier import CONFIG_FILE, ClassifierSelector
from selector.data import Example
from selector.head import PairHead
from selector.prompt_encoder import (
    EncoderConfig,
    PromptIds,
    TunedScorer,
    base_model_dir,
    encode,
    export_encoder,
    fine_tune,
)

pytestmark = pytest.mark.integration

MODELS = Path(__file__).resolve().parents[2] / "models"
LONG_PROMPT = (
    "Help me plan a week of dinners. "
    + "I have tried many recipe sites, cookbooks and meal kits and none of them fit my week. " * 10
    + "What should I cook on Friday?"
)


@pytest.fixture(scope="module")
def embedder() -> Embedder:
    return Embedder.load(MODELS / "embedder")


@pytest.fixture(scope="module")
def base() -> PreTrainedModel:
    return _base_copy()


def test_training_embeds_a_prompt_as_serving_does(embedder: Embedder, base: PreTrainedModel) -> None:
    """Same tokens (head and tail of 96) and pooling: the untuned torch encoder agrees with the int8 embedder."""
    ids = PromptIds(base_model_dir() / "tokenizer.json", 96)
    assert len(ids[LONG_PROMPT]) == 96
    with torch.no_grad():
        trained_side = encode(base, [ids[LONG_PROMPT], ids["Recommend a dog food brand."]]).numpy()
    served = embedder.embed([LONG_PROMPT, "Recommend a dog food brand."], max_tokens=96)
    assert (trained_side * served).sum(axis=1) == pytest.approx([1, 1], abs=0.02)
    # and not merely "any two MiniLM vectors": the whole prompt embeds differently
    assert float(trained_side[0] @ embedder.embed([LONG_PROMPT])[0]) < 0.995


def test_fine_tuning_moves_the_scores_toward_the_labels_and_exports_what_it_learned(
    embedder: Embedder, tmp_path: Path
) -> None:
    pairs = [
        ("Recommend some dog food brands.", "The user has two dogs.", 1),
        ("Recommend some dog food brands.", "The user plays the guitar.", 0),
        ("Which strings should I buy?", "The user plays the guitar.", 1),
        ("Which strings should I buy?", "The user has two dogs.", 0),
    ]
    examples = [Example(p, a, y, p, "human") for p, a, y in pairs]
    memories = embedder.embed([a for _, a, _ in pairs])
    ids = PromptIds(base_model_dir() / "tokenizer.json", 96)
    torch.manual_seed(0)
    head = PairHead(rank=2)
    before = TunedScorer(_base_copy(), head, ids).predict([p for p, _, _ in pairs], memories)
    tuned = fine_tune(
        examples, memories, np.ones(4, dtype=np.float32), head, ids, EncoderConfig(epochs=6, head_lr=1e-2), 1.0
    )
    after = tuned.predict([p for p, _, _ in pairs], memories)
    labels = np.array([y for _, _, y in pairs])
    loss = [float(np.mean(-labels * np.log(s) - (1 - labels) * np.log(1 - s))) for s in (before, after)]
    assert loss[1] < loss[0]

    export_encoder(tuned, tmp_path / "prompt_encoder")
    exported = Embedder.load(tmp_path / "prompt_encoder")
    prompts = sorted({p for p, _, _ in pairs})
    agreement = (exported.embed(prompts, max_tokens=96) * tuned.embed_prompts(prompts)).sum(axis=1)
    assert agreement == pytest.approx([1, 1], abs=0.02)  # int8 export of the tuned weights, not the base's


def test_a_config_naming_a_missing_encoder_fails_loudly(embedder: Embedder, tmp_path: Path) -> None:
    """A head trained on the tuned encoder's vectors must never be fed the stock embedder's instead."""
    model_dir = tmp_path / "classifier"
    shutil.copytree(MODELS / "selector" / "classifier", model_dir)
    config = json.loads((model_dir / CONFIG_FILE).read_text())
    config["prompt_encoder"] = "prompt_encoder"
    (model_dir / CONFIG_FILE).write_text(json.dumps(config))
    shutil.rmtree(model_dir / "prompt_encoder", ignore_errors=True)
    with pytest.raises(FileNotFoundError, match="prompt encoder 'prompt_encoder' that is missing"):
        ClassifierSelector.load(model_dir, embedder)


def _base_copy() -> PreTrainedModel:
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(base_model_dir()), local_files_only=True).eval()


def test_the_seeded_evaluation_retrains_the_tuned_encoder_only_when_named() -> None:
    from selector.evaluate import VARIANTS, chosen_variants

    default = chosen_variants("")
    assert default and not any(v.config.encoder_epochs for v in default)
    assert len(default) == len(VARIANTS) - 2  # random PrefEval negatives, and near misses
    named = chosen_variants("tuned prompt encoder")
    assert [(v.config.encoder_epochs > 0, v.config.prefeval_near_misses) for v in named] == [
        (True, False),
        (True, True),
    ]
    shipped = "classifier (bilinear-4 head, all sources)"  # a whole name, commas and all: that variant only
    assert [v.name for v in chosen_variants(shipped)] == [shipped]
    assert {v.name for v in chosen_variants("logistic,human only")} == {
        "classifier (logistic head, all sources)",
        "classifier (bilinear-4 head, human only)",
    }
