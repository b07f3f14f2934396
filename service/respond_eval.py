"""`heedful eval respond`: does generation personalize quietly, and does it personalize at all?

For prompts paired with user profiles (profiles_task6_items.jsonl), each profile's attributes become
the memories of a fresh user in a real embedded store (temp dir, own Redis key prefix, erased at the
end). The Responder selects with the configured backend and generates at temperature 0; the same
prompt is also answered with no memories (the generic answer, one-line system prompt) and with the
personalization rules over an empty background (the control: the personalized answer's system prompt
without the memories). Measured:

- selection rate: share of prompts for which the selector kept at least one memory;
- explicit-mention rate: share of personalized answers that name a used memory (`explicit_mention`);
  the same check on the control and generic answers shows how often it fires with nothing to mention;
- changed rate: share of answers that differ from the generic answer at all. The personalized and
  generic answers differ in system prompt as well as in memories; the control differs in system
  prompt only, so what the memories change is the personalized answer against the control.

The paper's most restrained generator named the user's attributes in 5% of answers; issue 6 asks
for at most 10% with the embedded model.

    heedful eval respond [--limit 15] [--max-tokens 64] [--backend NAME] [--json] [--out FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import difflib
import json
import re
import shutil
import sys
import tempfile
import unicodedata
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from memory.llm import LLM, ChatMessage
from memory.model import Memory
from memory.prompts.respond import with_background
from memory.store import attach_statement_vectors
from service.respond import Plan, Responder, Turn
from service.settings import REPO_ROOT, Settings, get_settings
from service.wiring import Components, build, build_llm
from verifier.words import stem

DATA_FILE = REPO_ROOT.parent / "shared" / "data" / "relevance" / "profiles_task6_items.jsonl"
DEFAULT_LIMIT = 15  # prompts; the embedded model makes ~1-14 tokens/s on the shared 2-core machine
DEFAULT_MAX_TOKENS = 64  # name-dropping happens in the opening sentences ("Given your interest in ...")
MAX_MEMORIES = 5  # the /respond default
SHORT_ANSWER_WORDS = 10  # fewer words than this is no answer ("The answer to this question is:")

# --- the explicit-mention check ---------------------------------------------------------------------

# Share of a memory's distinctive content words a sentence about the user must repeat to restate it.
RESTATE_SHARE = 0.6
# Words in a row a sentence must copy from a memory to recite it: a small model given the background
# sometimes copies the statements out ("They're likely well-read and educated."), without "you". A
# shorter run ("music theory", "manga and anime") is the memory shaping the content, which is the point.
RECITE_WORDS = 5


def _patterns(table: dict[str, str]) -> dict[str, re.Pattern[str]]:
    return {name: re.compile(pattern) for name, pattern in table.items()}


# Phrases that only point at what the assistant knows about the user: they count on their own.
PERSONA_PHRASES = _patterns(
    {
        "given your": r"\bgiven (?:your|that you(?:'re| are))\b",
        "as someone who": r"\bas (?:someone|a person|somebody) (?:who|with|interested)\b",
        "for someone like you": r"\bfor (?:someone|a person|people) like you\b",
    }
)
# Phrases that generic answers use too ("since you need to", "you mentioned" about the prompt, "if
# you're a beginner"): they count only when the same sentence has a distinctive word of a used memory.
PERSONA_CUES = _patterns(
    {
        "since you": r"\bsince you(?:'re| are|'ve| have| like| love| enjoy| prefer| work| live)?\b|\bsince your\b",
        "because you": r"\bbecause you(?:'re| are| like| love| enjoy| prefer)\b",
        "based on your": r"\bbased on (?:your|what you)\b",
        "you mentioned": r"\byou(?:'ve)? (?:mentioned|said|told me|noted)\b",
        "your interest in": r"\byour (?:interests?|background|passion|love|experience|expertise) (?:in|for|of|as)\b",
        "knowing you": r"\bknowing (?:that )?your?\b",
        "as a ..., you": r"(?:^|[.!?:;]\s*)as an? [\w'-]+(?: [\w'-]+){0,3}, you\b",
        "you're a": r"\byou(?:'re| are) an? \b",
    }
)
# The user, addressed or talked about (memory statements say "the user"; a model may copy that).
_ADDRESS = re.compile(r"\b(?:you|your|you're|yours|yourself|the user|user's)\b")
_SENTENCE_END = re.compile(r"(?<=[.!?…。！？])\s+|\n+")
_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")


# Function words, plus the words profile statements are written with ("The user is likely interested in
# ...", "values", "has experience with"): they say nothing about who the user is, and generic answers
# use them all the time ("if you're interested", "user experience").
_STOPWORD_TEXT = """
a an the and or but if so of to in on at by for with from about as into than then i me my mine we our us
you your yours yourself he she him her his they them their it its is am are was were be been being do does
did have has had having will would can could should may might must shall this that these those there here
what which who whom whose when where why how all any some just also really very too much many more most
not no nor own same such only other each both few s t ve d ll re m don't can't won't it's you're i'm
user user's users likely possibly probably perhaps somewhat particularly especially someone something
generally often usually tends tend seems seem potentially currently general various different related
interest interests interested concern concerns concerned value values valued appreciate appreciates like
likes enjoy enjoys prefer prefers want wants need needs looking seeking considering involved experience
experienced experiencing familiar knowledge aware open willing able require requires specifically
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())
_STOP_STEMS = frozenset(w for word in STOPWORDS for w in (word, stem(word)))


@dataclass(frozen=True)
class Mention:
    """Why an answer counts as naming the user's memories: the rule that fired and the sentence."""

    rule: str  # a PERSONA_PHRASES or PERSONA_CUES name, "recites" or "restates"
    sentence: str
    memory: str | None = None


def normalize(text: str) -> str:
    """NFKC + casefold, typographic apostrophes to ', all whitespace to single spaces per line."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def content_stems(text: str) -> set[str]:
    return {stem(w) for w in _WORD.findall(normalize(text)) if not w.isdigit()} - _STOP_STEMS


def sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(normalize(text)) if s.strip()]


def explicit_mention(answer: str, memories: Sequence[str], prompt: str = "") -> Mention | None:
    """The first sentence of `answer` that names what is known about the user, or None.

    A sentence names it when it (1) has a PERSONA_PHRASES phrase ("given your", "as someone who",
    "for someone like you"); or (2) has a PERSONA_CUES phrase ("since you're", "you mentioned",
    "as a <1-4 words>, you", "you're a", ...) and at least one distinctive word of a used memory; or
    (3) addresses or names the user (you, your, "the user") and repeats at least two, and at least
    RESTATE_SHARE, of one memory's distinctive words; or (4) copies RECITE_WORDS words in a row from a
    memory, two of them distinctive, whoever it talks about. A memory's distinctive words are its content words (light-stemmed)
    that the prompt does not contain: repeating the user's own topic is answering, not name-dropping.
    """
    asked = content_stems(prompt)
    distinctive = [(m, content_stems(m) - asked) for m in memories]
    runs = [(m, _runs(m, wanted)) for m, wanted in distinctive]
    for sentence in sentences(answer):
        for name, pattern in PERSONA_PHRASES.items():
            if pattern.search(sentence):
                return Mention(name, sentence)
        about_user = _ADDRESS.search(sentence) is not None
        cues = [name for name, pattern in PERSONA_CUES.items() if pattern.search(sentence)] if about_user else []
        words = content_stems(sentence)
        copied = set(_ngrams(_words(sentence)))
        for (memory, wanted), (_, memory_runs) in zip(distinctive, runs, strict=True):
            shared = wanted & words
            if shared and cues:
                return Mention(cues[0], sentence, memory)
            if memory_runs & copied:
                return Mention("recites", sentence, memory)
            if about_user and len(shared) >= 2 and len(shared) >= RESTATE_SHARE * len(wanted):
                return Mention("restates", sentence, memory)
    return None


def _words(text: str) -> list[str]:
    return [stem(w) for w in _WORD.findall(normalize(text))]


def _ngrams(words: list[str]) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + RECITE_WORDS]) for i in range(len(words) - RECITE_WORDS + 1)]


def _runs(memory: str, distinctive: set[str]) -> set[tuple[str, ...]]:
    """The memory's RECITE_WORDS-word runs that carry at least two of its distinctive words."""
    return {run for run in _ngrams(_words(memory)) if len(distinctive.intersection(run)) >= 2}


def changed(personalized: str, generic: str) -> bool:
    return normalize(personalized) != normalize(generic)


def similarity(a: str, b: str) -> float:
    """Word-sequence similarity in [0, 1] (difflib ratio on normalized words)."""
    return difflib.SequenceMatcher(None, normalize(a).split(), normalize(b).split(), autojunk=False).ratio()


# --- the evaluation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    prompt_id: str
    prompt: str
    attributes: list[str]


@dataclass(frozen=True)
class Planned:
    """One prompt's plans: with the selector's memories, with none (generic), and the control."""

    case: Case
    plan: Plan
    generic: Plan
    control: Plan

    @property
    def used(self) -> list[str]:
        return [s.memory.text for s in self.plan.used]


# The answers compared for each prompt, in the order they are generated and reported.
VARIANTS = ("personalized", "control", "generic")
VARIANT_PROMPTS = {
    "personalized": "rules + selected memories",
    "control": "rules + empty background (control)",
    "generic": "one-line prompt, no memories",
}


@dataclass(frozen=True)
class Answered:
    planned: Planned
    answers: dict[str, str]  # by VARIANTS name
    generate_ms: float  # all answers of the prompt
    mentions: dict[str, Mention | None]  # the check against the memories the personalized answer used

    @property
    def personalized(self) -> str:
        return self.answers["personalized"]

    @property
    def generic(self) -> str:
        return self.answers["generic"]


def control_plan(generic: Plan) -> Plan:
    """The generic plan's conversation under the personalized system prompt with an empty background."""
    system = ChatMessage(role="system", content=with_background([]))
    return dataclasses.replace(generic, messages=[system, *generic.messages[1:]], timings_ms={})


def load_cases(path: Path, limit: int) -> list[Case]:
    """The first `limit` distinct prompts, in file order (each prompt appears once per reference model)."""
    cases: dict[str, Case] = {}
    with path.open() as f:
        for line in f:
            row = json.loads(line)
            if row["prompt_id"] not in cases:
                attributes = list(dict.fromkeys(a["attribute"] for a in row["attributes"]))
                cases[row["prompt_id"]] = Case(row["prompt_id"], row["prompt_text"], attributes)
            if len(cases) == limit:
                break
    return list(cases.values())


def reference_rates(path: Path) -> dict[str, Any]:
    """The check applied to the dataset's own answers (frontier models given the whole profile)."""
    personalized = generic = rows = 0
    with path.open() as f:
        for line in f:
            row = json.loads(line)
            attributes = [a["attribute"] for a in row["attributes"]]
            rows += 1
            personalized += explicit_mention(row["response_personalized"], attributes, row["prompt_text"]) is not None
            generic += explicit_mention(row["response_no_context"], attributes, row["prompt_text"]) is not None
    return {"answers": rows, "explicit_mention_rate": personalized / rows, "generic_mention_rate": generic / rows}


def eval_settings(base: Settings, data_dir: Path) -> Settings:
    """An embedded store in a temp dir and a key prefix of its own, as the tests isolate themselves."""
    prefix = f"heedful-eval-{uuid.uuid4().hex[:10]}"
    return Settings(
        data_dir=data_dir,
        redis_url=base.redis_url,
        key_prefix=prefix,
        stream_key=f"{prefix}:conversations",
        dead_letter_stream=f"{prefix}:dead-letter",
        models_dir=base.models_dir,
        selector_backend=base.selector_backend,
        onnx_threads=base.onnx_threads,
        dev_key=False,
        embedded_worker=False,
        token_secret=SecretStr("eval-" + uuid.uuid4().hex),
    )


async def plan_all(components: Components, cases: list[Case], backend: str) -> list[Planned]:
    """Each case's attributes become a fresh user's memories (real embeddings, real store), then plan."""
    responder = Responder(components)
    planned = []
    for i, case in enumerate(cases):
        tenant = f"eval:{i}"
        vectors = await components.embed(case.attributes)
        memories = [Memory.new(tenant, t, embedding=v) for t, v in zip(case.attributes, vectors, strict=True)]
        await attach_statement_vectors(memories, components.embed)
        await components.store.upsert(memories)
        turns = [Turn("user", case.prompt)]
        plan = await responder.plan(tenant, turns, backend=backend, max_memories=MAX_MEMORIES)
        generic = await responder.plan(tenant, turns, backend=backend, max_memories=0)
        planned.append(Planned(case, plan, generic, control_plan(generic)))
        await components.store.delete_user(tenant)
    return planned


async def answer_all(components: Components, llm: LLM, planned: list[Planned], max_tokens: int) -> list[Answered]:
    """Every variant's answer for the prompts with a selection (without one, personalized is generic)."""
    responder = Responder(dataclasses.replace(components, llm=llm))
    answered = []
    for p in planned:
        if not p.used:
            continue
        plans = {"personalized": p.plan, "control": p.control, "generic": p.generic}
        answers = {v: await responder.generate(plans[v], temperature=0.0, max_tokens=max_tokens) for v in VARIANTS}
        mentions = {v: explicit_mention(answers[v], p.used, p.case.prompt) for v in VARIANTS}
        ms = sum(plans[v].timings_ms["generate"] for v in VARIANTS)
        found = mentions["personalized"]
        rule = found.rule if found else "none"
        print(f"  [{llm.model_name}] {p.case.prompt_id}: {ms / 1000:.0f} s, mention: {rule}", file=sys.stderr)
        answered.append(Answered(p, answers, ms, mentions))
    return answered


def _share(count: float, of: int) -> float | None:
    return count / of if of else None


def variant_summary(answered: list[Answered], variant: str) -> dict[str, Any]:
    """One variant's answers: the mention check, and how they differ from the generic answers."""
    n = len(answered)
    mentions = sum(a.mentions[variant] is not None for a in answered)
    changes = sum(changed(a.answers[variant], a.generic) for a in answered)
    return {
        "system_prompt": VARIANT_PROMPTS[variant],
        "explicit_mention": mentions,
        "explicit_mention_rate": _share(mentions, n),
        "changed": changes,
        "changed_rate": _share(changes, n),
        "mean_similarity_to_generic": _share(sum(similarity(a.answers[variant], a.generic) for a in answered), n),
        "short": sum(len(a.answers[variant].split()) < SHORT_ANSWER_WORDS for a in answered),
    }


def summarize(planned: list[Planned], answered: list[Answered]) -> dict[str, Any]:
    n = len(answered)
    selected = sum(bool(p.used) for p in planned)
    memories_changed = sum(changed(a.personalized, a.answers["control"]) for a in answered)
    return {
        "prompts": len(planned),
        "selected": selected,
        "selection_rate": _share(selected, len(planned)),
        "memories_per_selection": _share(sum(len(p.used) for p in planned), selected),
        "personalized_answers": n,
        "variants": {v: variant_summary(answered, v) for v in VARIANTS},
        # what the memories alone change: the same rules prompt with and without them
        "changed_vs_control": memories_changed,
        "changed_vs_control_rate": _share(memories_changed, n),
        "mean_similarity_to_control": _share(
            sum(similarity(a.personalized, a.answers["control"]) for a in answered), n
        ),
        "generate_s_per_answer": _share(sum(a.generate_ms for a in answered) / 1000 / len(VARIANTS), n),
    }


def answer_record(a: Answered) -> dict[str, Any]:
    return {
        "prompt_id": a.planned.case.prompt_id,
        "prompt": a.planned.case.prompt,
        "used": a.planned.used,
        "answers": a.answers,
        "mentions": {v: dataclasses.asdict(m) if m else None for v, m in a.mentions.items()},
    }


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="heedful eval respond", description=__doc__.splitlines()[0])
    parser.add_argument("--limit", type=int, default=DEFAULT_LIMIT, help="distinct prompts (default 15)")
    parser.add_argument("--max-tokens", type=int, default=DEFAULT_MAX_TOKENS)
    parser.add_argument("--backend", default=None, help="selector backend (default: HEEDFUL_SELECTOR_BACKEND)")
    parser.add_argument("--data", type=Path, default=DATA_FILE)
    parser.add_argument("--json", action="store_true", help="print the results (answers included) as JSON")
    parser.add_argument("--out", type=Path, default=None, help="also write the JSON results to this file")
    return parser.parse_args(list(argv))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    base = get_settings()
    backend = args.backend or base.selector_backend
    cases = load_cases(args.data, args.limit)
    generators: list[tuple[str, LLM]] = [("embedded", build_llm(base.model_copy(update={"llm_url": None})))]
    if base.llm_url:
        generators.append((f"HEEDFUL_LLM_URL {base.llm_url}", build_llm(base)))
    tmp = Path(tempfile.mkdtemp(prefix="heedful-eval-respond-"))
    settings = eval_settings(base, tmp / "var")
    components = await build(settings)
    results = []
    try:
        planned = await plan_all(components, cases, backend)
        for label, llm in generators:
            try:
                answered = await answer_all(components, llm, planned, args.max_tokens)
            finally:
                await llm.aclose()
            results.append(
                {
                    "generator": label,
                    "model": llm.model_name,
                    **summarize(planned, answered),
                    "answers": [answer_record(a) for a in answered],
                }
            )
    finally:
        await components.close()
        purge(settings)
        shutil.rmtree(tmp, ignore_errors=True)
    return {
        "data": str(args.data),
        "backend": backend,
        "max_tokens": args.max_tokens,
        "temperature": 0.0,
        "results": results,
        "reference": reference_rates(args.data),
    }


def purge(settings: Settings) -> None:
    """Removes every Redis key under the evaluation's own prefix."""
    import redis

    client = redis.Redis.from_url(settings.redis_url)
    try:
        keys = list(client.scan_iter(f"{settings.key_prefix}*", count=1000))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


def render(doc: dict[str, Any]) -> str:
    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    def num(value: float | None, digits: int = 2) -> str:
        return "-" if value is None else f"{value:.{digits}f}"

    lines = [
        f"selector backend: {doc['backend']}; temperature 0, max_tokens {doc['max_tokens']}",
        "",
        "| generator | system prompt | prompts | with a selection | memories used (mean) | explicit mention "
        f"| changed vs generic | word similarity to generic | under {SHORT_ANSWER_WORDS} words | s per answer |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    effects = [""]
    for r in doc["results"]:
        n = r["personalized_answers"]
        for variant in VARIANTS:
            v = r["variants"][variant]
            used = num(r["memories_per_selection"], 1) if variant == "personalized" else "0"
            against_generic = (
                ("-", "-")
                if variant == "generic"
                else (f"{v['changed']}/{n} ({pct(v['changed_rate'])})", num(v["mean_similarity_to_generic"]))
            )
            lines.append(
                f"| {r['generator']} ({r['model']}) | {v['system_prompt']} | {r['prompts']} "
                f"| {r['selected']} ({pct(r['selection_rate'])}) | {used} "
                f"| {v['explicit_mention']}/{n} ({pct(v['explicit_mention_rate'])}) "
                f"| {against_generic[0]} | {against_generic[1]} | {v['short']} "
                f"| {num(r['generate_s_per_answer'], 0)} |"
            )
        effects.append(
            f"{r['generator']}: personalized vs control, what the memories alone change: "
            f"{r['changed_vs_control']}/{n} answers changed ({pct(r['changed_vs_control_rate'])}), "
            f"word similarity {num(r['mean_similarity_to_control'])}"
        )
    ref = doc["reference"]
    lines += [
        *effects,
        "",
        f"reference, the same check on the dataset's own answers ({ref['answers']} answers by gpt-5.4 and "
        f"claude-sonnet-4-6, memories = the whole profile): explicit mention {pct(ref['explicit_mention_rate'])}, "
        f"in their generic answers {pct(ref['generic_mention_rate'])}",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str]) -> int:
    args = parse_args(argv)
    doc = asyncio.run(run(args))
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    if args.out:
        args.out.write_text(text + "\n")
    print(text if args.json else render(doc))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
