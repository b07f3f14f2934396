"""`heedful eval verifier`: answer parsing, the zero-shot row, the LLM sample, and one real run on a few dialogues."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from memory.llm import ChatMessage, Completion, LLMError, TruncatedJSON
from memory.llm.factory import build_llm
from memory.prompts import support
from service.settings import get_settings
from verifier.pairs import SUPPORTED, UNSUPPORTED, Pair
from verifier.snippet import format_snippet
from verifier.zero_shot import judge_all, run_zero_shot, stratified_sample, zero_shot_row

REPO_ROOT = Path(__file__).resolve().parents[2]
SNIPPET = format_snippet([("assistant", "What do you do on weekends?"), ("user", "Mostly hiking with my dog.")])


def _pair(label: int, kind: str, attribute: str = "Likes hiking.") -> Pair:
    return Pair(SNIPPET, attribute, label, kind, "msc", "valid_0")


@pytest.mark.parametrize(
    ("answer", "supported"),
    [
        ('{"answer": "SUPPORTED"}', True),
        ('{\n  "answer": "UNSUPPORTED"\n}', False),
        ("The user's words support it.\nAnswer: SUPPORTED", True),
        ("Answer: UNSUPPORTED", False),
        ("This is not supported by the user's own turn.", False),
        ("supported? no: UNSUPPORTED", False),  # the last verdict counts
        ('{"answer": "maybe"}', None),
        ("I cannot tell.", None),
        ("", None),
    ],
)
def test_answers_parse_to_a_verdict_or_to_none(answer: str, supported: bool | None) -> None:
    assert support.parse(answer) is supported


def test_the_prompt_shows_snippet_and_attribute_and_asks_for_the_schema() -> None:
    system, user = support.messages(SNIPPET, "Likes hiking.")
    assert "USER:" in system.content and "OTHER:" in system.content
    assert SNIPPET in user.content and "Attribute: Likes hiking." in user.content
    assert support.json_schema()["properties"]["answer"]["enum"] == ["SUPPORTED", "UNSUPPORTED"]


class ScriptedLLM:
    """Answers each call with the next scripted reply; an exception in the script is raised instead."""

    model_name = "scripted"

    def __init__(self, *replies: str | Exception) -> None:
        self.replies = list(replies)
        self.schemas: list[dict[str, Any] | None] = []

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        self.schemas.append(json_schema)
        reply = self.replies.pop(0)
        if isinstance(reply, Exception):
            raise reply
        return Completion(text=reply)

    def stream(self, messages: list[ChatMessage], *, max_tokens: int = 256, temperature: float = 0.0) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


async def test_failed_and_cut_calls_become_judgements() -> None:
    llm = ScriptedLLM(
        '{"answer": "UNSUPPORTED"}',
        TruncatedJSON("cut", '{"answer": "UNSUPP'),
        LLMError("server down"),
        TruncatedJSON("cut", '{"answer": "SUPPORTED"'),
    )
    pairs = [_pair(UNSUPPORTED, "missing_evidence")] * 4
    judgements = await judge_all(llm, pairs, max_concurrency=1)
    assert [j.supported for j in judgements] == [False, None, None, True]
    assert [j.error for j in judgements] == [None, None, "server down", None]
    assert llm.schemas == [support.json_schema()] * 4  # structured output asked for on every call


def test_the_zero_shot_row_counts_unparsable_answers_as_supported() -> None:
    from verifier.zero_shot import Judgement

    pairs = [
        _pair(UNSUPPORTED, "other_speaker"),  # flagged: true positive
        _pair(UNSUPPORTED, "other_speaker"),  # no verdict: not flagged, a miss
        _pair(UNSUPPORTED, "contradiction"),  # call failed: not flagged, a miss
        _pair(SUPPORTED, "supported"),  # flagged: false positive
        _pair(SUPPORTED, "supported"),  # kept
    ]
    judgements = [Judgement(False), Judgement(None), Judgement(None, "timeout"), Judgement(False), Judgement(True)]
    row = zero_shot_row("zero-shot test", pairs, judgements, seconds=10.0)
    assert (row["precision"], row["recall"], row["accuracy"], row["n"]) == (0.5, 1 / 3, 0.4, 5)
    assert row["by_kind"] == {"contradiction": 0.0, "other_speaker": 0.5, "supported": 0.5}
    assert (row["parsable"], row["errors"], row["first_error"]) == (0.6, 1, "timeout")
    assert row["threshold"] is None and row["auc"] is None
    assert row["seconds_per_pair"] == 2.0


def test_the_llm_sample_is_stratified_by_kind_and_seeded() -> None:
    pairs = (
        [_pair(SUPPORTED, "supported", f"s{i}") for i in range(500)]
        + [_pair(UNSUPPORTED, "missing_evidence", f"m{i}") for i in range(300)]
        + [_pair(UNSUPPORTED, "contradiction", f"c{i}") for i in range(196)]
        + [_pair(UNSUPPORTED, "task_context", f"t{i}") for i in range(4)]
    )
    chosen = stratified_sample(pairs, 100, seed=0)
    counts = Counter(pairs[i].kind for i in chosen)
    assert len(chosen) == len(set(chosen)) == 100
    assert counts == {"supported": 50, "missing_evidence": 30, "contradiction": 19, "task_context": 1}
    assert stratified_sample(pairs, 100, seed=0) == chosen
    assert stratified_sample(pairs, 100, seed=1) != chosen
    assert len(stratified_sample(pairs, 3, seed=0)) == 3
    assert len(stratified_sample(pairs, 5000, seed=0)) == len(pairs)


class FakeOpenAI:
    """A tiny OpenAI-compatible chat server on its own thread: every answer is `answer`; bodies are kept."""

    def __init__(self, answer: str) -> None:
        self.bodies: list[dict[str, Any]] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                bodies.append(json.loads(self.rfile.read(int(self.headers["content-length"]))))
                choice = {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}
                payload = json.dumps({"choices": [choice]}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_server() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI('{"answer": "UNSUPPORTED"}')
    yield server
    server.close()


async def test_a_served_model_goes_through_the_same_row(fake_server: FakeOpenAI, tmp_path: Path) -> None:
    llm = build_llm(fake_server.url, "big-model", None, 5.0, 0, tmp_path, 1)
    pairs = [_pair(UNSUPPORTED, "other_speaker"), _pair(SUPPORTED, "supported")]
    row = await run_zero_shot("zero-shot big-model", llm, pairs)
    assert (row["recall"], row["precision"], row["parsable"], row["errors"]) == (1.0, 0.5, 1.0, 0)
    assert fake_server.bodies[0]["model"] == "big-model"
    assert fake_server.bodies[0]["response_format"]["json_schema"]["schema"] == support.json_schema()


# Ten speaker pairs, so the 20% val split holds two of them; turns alternate between the two speakers.
DIALOGUE = [
    ("Hi! I just got back from walking my two dogs.", "I have two dogs. I walk my dogs."),
    ("Nice. I am a nurse, so I rarely have time for pets.", "I am a nurse."),
    ("That sounds hard. I work at a bakery downtown.", "I work at a bakery."),
    ("I love bread! I bake sourdough on weekends.", "I love bread. I bake sourdough."),
    ("Do you live near the city?", None),
    ("Yes, I live in Chicago with my sister.", "I live in Chicago. I have a sister."),
    ("I like to read mystery novels in the evening.", "I like to read mystery novels."),
    ("My favorite color is green, like my kitchen.", "My favorite color is green."),
]


def _write_dialogues(directory: Path, speaker_pairs: int = 10) -> None:
    records = []
    for pair in range(speaker_pairs):
        turns = []
        for n, (text, persona) in enumerate(DIALOGUE):
            turn: dict[str, str] = {"id": f"bot_{n % 2}", "text": f"{text} (pair {pair})"}
            if persona:
                turn["persona_text"] = persona
            turns.append(turn)
        records.append({"initial_data_id": f"pair_{pair}", "dialog": turns})
    directory.mkdir(parents=True)
    (directory / "valid.txt").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")


@pytest.mark.integration
def test_the_command_reports_every_row_on_a_directory_of_msc_files(
    tmp_path: Path, fake_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from verifier.eval_cli import main

    _write_dialogues(tmp_path / "msc")  # a flat directory, not the shared data's layout
    monkeypatch.setenv("HEEDFUL_DATA_DIR", str(REPO_ROOT / "var"))  # the embedded model's converted copy
    get_settings.cache_clear()
    try:
        argv = ["--data", str(tmp_path / "msc"), "--json", "--llm-pairs", "4", "--checkpoint", str(tmp_path / "none")]
        assert main([*argv, "--llm-url", fake_server.url, "--threads", "1"]) == 0
    finally:
        get_settings.cache_clear()
    report = json.loads(capsys.readouterr().out)

    assert report["pairs"] == sum(report["kinds"].values()) > 0
    assert 0 < report["unsupported"] < report["pairs"]
    names = [(s["name"], s["rule"]) for s in report["systems"]]
    assert names == [
        ("verifier, ONNX int8", "shipped (models/verifier/config.json)"),
        ("verifier, ONNX int8 (threshold refit)", "unsupported recall >= 0.9 on val"),
        ("word overlap", "unsupported recall >= 0.9 on val"),
        ("word overlap", "best F1 on val (oracle)"),
        ("embedding cosine", "unsupported recall >= 0.9 on val"),
        ("embedding cosine", "best F1 on val (oracle)"),
    ]
    assert report["systems"][0]["threshold"] == report["shipped_threshold"]
    assert any("PyTorch fp32 row skipped" in note and "heedful train verifier" in note for note in report["notes"])

    sample = report["llm_sample"]
    assert sample["pairs"] == 4 == sum(sample["kinds"].values())
    onnx, embedded, served = sample["systems"]
    assert onnx["name"] == "verifier, ONNX int8" and onnx["n"] == 4
    assert embedded["name"] == "zero-shot SmolLM2-135M-Instruct (embedded)"
    assert embedded["parsable"] == 1.0  # constrained decoding: always one of the two answers
    assert served["name"].endswith(f"({fake_server.url})")
    assert (served["recall"], served["parsable"]) == (1.0, 1.0)  # it flags everything
    assert len(fake_server.bodies) == 4


@pytest.mark.integration
def test_llm_pairs_zero_skips_the_llm_rows_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from verifier.eval_cli import main

    _write_dialogues(tmp_path / "msc")
    monkeypatch.delenv("HEEDFUL_LLM_URL", raising=False)
    get_settings.cache_clear()
    try:
        assert main(["--data", str(tmp_path / "msc"), "--llm-pairs", "0", "--checkpoint", str(tmp_path)]) == 0
    finally:
        get_settings.cache_clear()
    table = capsys.readouterr().out
    assert table.startswith("Command: heedful eval verifier --data")
    assert "| verifier, ONNX int8 | shipped (models/verifier/config.json) |" in table
    assert "Zero-shot LLM rows skipped (--llm-pairs 0)." in table
    assert "PyTorch fp32 row skipped" in table


@pytest.mark.integration
def test_write_threshold_ships_the_refit_threshold_to_the_model_it_evaluated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import shutil

    from verifier.config import VerifierConfig
    from verifier.eval_cli import main

    _write_dialogues(tmp_path / "msc")
    model = tmp_path / "model"
    shutil.copytree(REPO_ROOT / "models" / "verifier", model)
    before = VerifierConfig.load(model).threshold
    monkeypatch.delenv("HEEDFUL_LLM_URL", raising=False)
    get_settings.cache_clear()
    try:
        argv = ["--data", str(tmp_path / "msc"), "--json", "--llm-pairs", "0", "--model", str(model)]
        assert main([*argv, "--checkpoint", str(tmp_path), "--write-threshold"]) == 0
    finally:
        get_settings.cache_clear()
    report = json.loads(capsys.readouterr().out)

    refit = report["systems"][1]
    assert refit["rule"] == "unsupported recall >= 0.9 on val" and refit["recall"] >= 0.9
    assert VerifierConfig.load(model).threshold == refit["threshold"]
    assert any(f"(was {before:.4f})" in note for note in report["notes"])
    assert VerifierConfig.load(REPO_ROOT / "models" / "verifier").threshold == before  # only the copy changed
