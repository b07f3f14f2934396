"""Stage 1: from a conversation to candidate attributes, each with quoted evidence from the user's turns."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass

from pydantic import ValidationError

from memory.conversations import Conversation
from memory.llm import LLM, ChatMessage, TruncatedJSON
from memory.model import Evidence, MemoryKind
from memory.prompts import extract
from memory.scripted import scripted_turns
from verifier.words import stemmed_overlap_share

log = logging.getLogger("heedful.extraction")

# Paper Appendix B: conversations longer than this are split into chunks before extraction.
CHUNK_CHARS = 50_000
# Paper Appendix B: attributes the extractor itself rates below this are dropped.
MIN_CONFIDENCE = 0.4
EXTRACTION_MAX_TOKENS = 1024
# Share of a statement's content words a user turn must hold to become its evidence when the model cited
# no user turn (see `anchor`).
ANCHOR_MIN_OVERLAP = 0.6


@dataclass
class Candidate:
    """An attribute on its way to becoming a memory."""

    text: str
    kind: MemoryKind
    confidence: float
    evidence: list[Evidence]
    reasoning: str = ""
    verifier_score: float | None = None


@dataclass
class ExtractionReport:
    candidates: list[Candidate]
    rejected: int  # malformed, unsupported by a user turn, or below the confidence cut
    scripted_turns: int = 0  # user turns skipped as templated content (memory/scripted.py)


def chunks(
    conversation: Conversation, limit: int = CHUNK_CHARS, skip: set[int] | None = None
) -> list[list[tuple[int, str, str]]]:
    """Consecutive turns grouped so each chunk stays under `limit` characters (a longer turn is its own chunk)."""
    out: list[list[tuple[int, str, str]]] = []
    current: list[tuple[int, str, str]] = []
    size = 0
    for i, message in enumerate(conversation.messages):
        if message.role == "system" or i in (skip or set()):
            continue  # the app's instructions and templated text are not the user's words
        if current and size + len(message.content) > limit:
            out.append(current)
            current, size = [], 0
        current.append((i, message.role, message.content[:limit]))
        size += len(message.content)
    if current:
        out.append(current)
    return out


def parse(raw: str) -> tuple[list[extract.ExtractedAttribute], int]:
    """Valid attributes and how many items were malformed; a malformed item never sinks its neighbours."""
    try:
        payload = json.loads(raw)
    except json.JSONDecodeError:
        match = re.search(r"\{.*\}", raw, flags=re.DOTALL)  # repair: text around the JSON object
        if match is None:
            return [], 1
        try:
            payload = json.loads(match.group(0))
        except json.JSONDecodeError:
            return [], 1
    items = payload.get("attributes", []) if isinstance(payload, dict) else []
    return _validated(items)


def salvage(truncated: str) -> tuple[list[extract.ExtractedAttribute], int]:
    """The complete items of an attribute list cut off at max_tokens; the cut item counts as malformed.

    A small model sometimes repeats one attribute until the token budget runs out (SmolLM2 on short
    chats): the items before the cut are whole JSON objects and are as good as a closed list's."""
    opening = re.search(r'\{\s*"attributes"\s*:\s*\[', truncated)
    if opening is None:
        return [], 1
    decoder = json.JSONDecoder()
    items: list[object] = []
    position = opening.end()
    while True:
        while position < len(truncated) and truncated[position] in " \t\r\n,":
            position += 1
        try:
            item, position = decoder.raw_decode(truncated, position)
        except json.JSONDecodeError:
            break
        items.append(item)
    good, bad = _validated(items)
    return good, bad + 1


def _validated(items: object) -> tuple[list[extract.ExtractedAttribute], int]:
    good: list[extract.ExtractedAttribute] = []
    bad = 0
    for item in items if isinstance(items, list) else []:
        try:
            good.append(extract.ExtractedAttribute.model_validate(item))
        except ValidationError:
            bad += 1
    return good, bad


def ground(
    attribute: extract.ExtractedAttribute,
    conversation: Conversation,
    conversation_id: str,
    skip: set[int] | None = None,
) -> Candidate | None:
    """Keeps only evidence from the user's own (non-templated) turns, quoted; no such evidence, no candidate.

    When none of the cited turns is the user's, the citation may be a numbering slip: it is re-anchored to
    the user turn holding most of the statement's content words (`anchor`), unless a cited turn holds as
    many (then the model took the statement from that turn, and it is dropped)."""
    user_turns = {t: text for t, text in conversation.user_turns() if t not in (skip or set())}
    turns = sorted({t for t in attribute.evidence_turns if t in user_turns})
    if not turns:
        cited = [
            conversation.messages[t].content
            for t in sorted(set(attribute.evidence_turns))
            if 0 <= t < len(conversation.messages)
        ]
        anchored = anchor(attribute.statement, user_turns, cited) if cited else None
        if anchored is None:
            return None
        turns = [anchored]
    quote = " … ".join(user_turns[t] for t in turns)
    return Candidate(
        text=attribute.statement.strip(),
        kind=MemoryKind(attribute.kind),
        confidence=attribute.confidence,
        evidence=[Evidence(conversation_id=conversation_id, turn_ids=turns, quote=quote[:2000])],
        reasoning=attribute.reasoning,
    )


# A user turn that asks for content to be produced: what it contains is the task's, not the user's (the
# paper's task-context confusion: "write a cover letter for my friend who has 5 years of marketing
# experience" does not say the user has them). Politeness and a leading greeting are allowed before the verb.
_TASK_REQUEST = re.compile(
    r"^\W*(?:(?:hi|hello|hey|ok|okay|thanks|thank you)\W+)?(?:(?:please|pls|kindly)\W+)?"
    r"(?:(?:can|could|would|will)\s+you\s+(?:please\s+)?|i\s+(?:need|want)\s+you\s+to\s+|help\s+me\s+)?"
    r"(?:write|draft|compose|translate|rewrite|re-write|edit|proofread|paraphrase|summari[sz]e|polish|"
    r"improve|correct|fix\s+the\s+grammar|reply\s+to|respond\s+to|role-?play|pretend)\b",
    re.IGNORECASE,
)


def task_requests(user_turns: list[tuple[int, str]]) -> set[int]:
    """User turns that ask for text to be written, translated or edited: never evidence about the user."""
    return {turn for turn, text in user_turns if _TASK_REQUEST.match(text)}


def anchor(statement: str, user_turns: dict[int, str], cited: list[str]) -> int | None:
    """The user turn that says what `statement` says, by stemmed content-word overlap; None below the bar,
    or when one of the turns the model `cited` (the assistant's, the app's, a templated or task turn) says
    it as fully: then that turn is the statement's source, and it is not the user's word.

    Small extractors misnumber turns: the LoRA adapter (models/extractor) cites turn 1 whatever the order
    of the speakers. The words decide instead, and only among the user's own turns; the verifier judges the
    re-anchored pair like any other before anything is stored. "The user" is how statements are phrased,
    not content, so it does not count."""
    subject = _STATEMENT_SUBJECT.sub(" ", statement)
    best, best_share = None, 0.0
    for turn, text in user_turns.items():
        share = stemmed_overlap_share(subject, text)
        if share > best_share:
            best, best_share = turn, share
    if best_share < ANCHOR_MIN_OVERLAP:
        return None
    if any(stemmed_overlap_share(subject, text) >= best_share for text in cited):
        return None
    return best


_STATEMENT_SUBJECT = re.compile(r"\b(?:the\s+)?users?\b", re.IGNORECASE)


# valid attributes, and how many items were malformed (named here: inside Extractor, `extract` is its method)
Parsed = tuple[list[extract.ExtractedAttribute], int]


class Extractor:
    def __init__(self, llm: LLM, *, max_tokens: int = EXTRACTION_MAX_TOKENS) -> None:
        self.llm = llm
        self.max_tokens = max_tokens

    async def extract(self, conversation: Conversation) -> ExtractionReport:
        candidates: list[Candidate] = []
        rejected = 0
        scripted = scripted_turns(conversation.user_turns())
        not_evidence = _not_evidence(conversation, scripted)
        for chunk in chunks(conversation, skip=scripted):
            if not any(role == "user" for _, role, _ in chunk):
                continue
            attributes, malformed = await self._attributes(extract.messages(chunk))
            rejected += malformed
            for attribute in attributes:
                candidate = ground(attribute, conversation, conversation.conversation_id, not_evidence)
                if candidate is None or candidate.confidence < MIN_CONFIDENCE:
                    rejected += 1
                    continue
                candidates.append(candidate)
        return ExtractionReport(candidates=candidates, rejected=rejected, scripted_turns=len(scripted))

    async def revise(self, candidate: Candidate, conversation: Conversation, verdict: str) -> Candidate | None:
        """One revision of a flagged attribute (verify-and-refine): the extractor sees the verifier's verdict."""
        turns: list[tuple[int, str, str]] = [
            (i, m.role, m.content) for i, m in enumerate(conversation.messages) if m.role != "system"
        ]
        messages = extract.messages(turns)
        messages[-1].content += (
            f"\n\nA previous answer proposed: {candidate.text!r}. Verdict: {verdict} "
            "Revise it to what the user actually said, or return an empty list to drop it. Return at most 1."
        )
        attributes, _ = await self._attributes(messages)
        not_evidence = _not_evidence(conversation, scripted_turns(conversation.user_turns()))
        for attribute in attributes[:1]:
            revised = ground(attribute, conversation, conversation.conversation_id, not_evidence)
            if revised is not None and revised.confidence >= MIN_CONFIDENCE:
                return revised
        return None

    async def _attributes(self, messages: list[ChatMessage]) -> Parsed:
        """The model's attributes and how many items were malformed; an answer cut at max_tokens keeps its
        complete items."""
        try:
            completion = await self.llm.complete(
                messages, max_tokens=self.max_tokens, json_schema=extract.json_schema()
            )
        except TruncatedJSON as cut:
            attributes, malformed = salvage(cut.text)
            log.warning("extraction output cut at max_tokens; kept %d complete attributes", len(attributes))
            return attributes, malformed
        return parse(completion.text)


def _not_evidence(conversation: Conversation, scripted: set[int]) -> set[int]:
    """User turns that can never be evidence: templated ones, and requests to write for someone else (those
    stay in the prompt as context)."""
    return scripted | task_requests(conversation.user_turns())
