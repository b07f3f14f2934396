"""Rule-based reading and rewriting of first-person persona statements.

The pair builder needs three rewrites of a statement such as "I like to read.":
its broad shape (category + object) for the overgeneralization templates, its negation
for contradiction negatives, and a third-person form ("Likes to read.") because the
extractor may phrase memories either way (DESIGN.md: "prefers bullet points").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from verifier.words import as_sentence


@dataclass(frozen=True)
class Shape:
    """What a statement is about, coarsely: enough to broaden it with a template."""

    category: str  # like | dislike | have | role | be | work | live | favorite | ability | act
    obj: str  # the object phrase ("to read", "two jobs", "a teacher", "Paris")
    verb: str = ""  # the verb or preposition that introduced obj ("love", "at", "in")
    kind: str = ""  # for favorite: what kind of thing ("color", "music")


_PATTERNS: list[tuple[str, re.Pattern[str]]] = [
    ("favorite", re.compile(r"^my favou?rite (?P<kind>[\w ]+?) (?:is|are) (?P<obj>.+)$", re.I)),
    ("like", re.compile(r"^i (?:really |also |just )?(?P<verb>like|love|enjoy|adore|prefer) (?P<obj>.+)$", re.I)),
    ("dislike", re.compile(r"^i (?:really )?(?P<verb>hate|dislike|can't stand|detest) (?P<obj>.+)$", re.I)),
    ("work", re.compile(r"^i work (?P<verb>as|at|in|for|on|with) (?P<obj>.+)$", re.I)),
    ("live", re.compile(r"^i (?:currently )?live (?P<verb>in|near|on|at|with) (?P<obj>.+)$", re.I)),
    ("role", re.compile(r"^i(?: am|'m) (?P<obj>(?:a|an) .+)$", re.I)),
    ("be", re.compile(r"^i(?: am|'m) (?!not\b)(?P<obj>.+)$", re.I)),
    ("have", re.compile(r"^i (?P<verb>have|own|'ve got|have got) (?!not\b|never\b|been\b)(?P<obj>.+)$", re.I)),
    ("ability", re.compile(r"^i can (?!not\b|'t\b)(?P<obj>.+)$", re.I)),
    ("act", re.compile(r"^i (?!do not\b|don't\b|never\b|am not\b)(?P<obj>[a-z][\w']* .+)$", re.I)),
]


def shape_of(statement: str) -> Shape | None:
    """The statement's shape, or None when no rule reads it (it then gets no broadened twin)."""
    text = _LEADING_ADVERB.sub("I ", statement.strip().rstrip(".!").strip())
    for category, pattern in _PATTERNS:
        match = pattern.match(text)
        if match:
            groups = match.groupdict()
            return Shape(category, groups["obj"], groups.get("verb") or "", groups.get("kind") or "")
    return None


_NEGATIONS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^I(?: am|'m) (?!not\b)", re.I), "I am not "),
    (re.compile(r"^I was (?!not\b)", re.I), "I was not "),
    (re.compile(r"^I(?: have|'ve) (been|had|never) ", re.I), r"I have not \1 "),
    (re.compile(r"^I(?: will|'ll) (?!not\b)", re.I), "I will not "),
    (re.compile(r"^I can (?!not\b)", re.I), "I cannot "),
    (re.compile(r"^I would (?!not\b)", re.I), "I would not "),
    (re.compile(r"^I (love|like|enjoy|adore) ", re.I), "I hate "),
    (re.compile(r"^My (.+?) (is|are|was|were) (?!not\b)", re.I), r"My \1 \2 not "),
]
_NEGATED_ALREADY = re.compile(r"^I (?:do not|don't|never|am not|have not|haven't|cannot|can't|won't) ", re.I)
_PLAIN_VERB = re.compile(r"^I ([a-z]+) ", re.I)
# Past-tense verbs take "did not" + base form; the few irregular ones seen most in MSC are listed.
_IRREGULAR_PAST = {
    "went": "go", "had": "have", "got": "get", "grew": "grow", "made": "make", "took": "take",
    "bought": "buy", "saw": "see", "met": "meet", "left": "leave", "lost": "lose", "found": "find",
    "began": "begin", "ran": "run", "won": "win", "spent": "spend", "taught": "teach", "broke": "break",
    "came": "come", "did": "do", "felt": "feel", "kept": "keep", "sold": "sell", "told": "tell",
    "thought": "think", "wrote": "write", "read": "read", "gave": "give", "drove": "drive",
}  # fmt: skip
# Adverbs between "I" and the verb; dropped before negating ("I also have" -> "I do not have").
_LEADING_ADVERB = re.compile(r"^I (?:just|also|really|still|only|always|usually|recently|actually) ", re.I)
_STATIVE = frozenset({"have", "own", "know", "need", "want", "live", "work", "prefer", "think"})


def negate(statement: str, variant: int = 0) -> str | None:
    """A contradiction of the statement, or None when the rules cannot build one.

    `variant` alternates between "do not" and "never" forms so that one phrasing does not
    become the cue the model learns for contradiction.
    """
    text = _LEADING_ADVERB.sub("I ", statement.strip().rstrip(".!"))
    if _NEGATED_ALREADY.match(text):
        return None
    for pattern, replacement in _NEGATIONS:
        if variant % 2 and replacement == "I hate ":
            replacement = "I do not like "
        if pattern.match(text):
            return as_sentence(pattern.sub(replacement, text, count=1))
    match = _PLAIN_VERB.match(text)
    if not match:
        return None
    verb = match.group(1).lower()
    rest = text[match.end() :]
    if verb in _IRREGULAR_PAST or verb.endswith("ed"):
        base = _IRREGULAR_PAST.get(verb, verb[:-2] if verb.endswith("ed") else verb)
        return as_sentence(f"I did not {base} {rest}")
    if verb in _STATIVE:  # "I never have a car" is not how anyone says it
        aux = "don't" if variant % 2 else "do not"
        return as_sentence(f"I {aux} {verb} {rest}")
    aux = "never" if variant % 2 else "do not"
    return as_sentence(f"I {aux} {verb} {rest}")


_THIRD_PERSON_LEAD: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^I(?: am|'m)\b", re.I), "is"),
    (re.compile(r"^I(?: have|'ve)\b", re.I), "has"),
    (re.compile(r"^I (?:do not|don't)\b", re.I), "does not"),
    (re.compile(r"^I(?: would|'d)\b", re.I), "would"),
    (re.compile(r"^I(?: will|'ll)\b", re.I), "will"),
    (re.compile(r"^I (was|can|cannot|could|used|had|went|got|grew|should|might|must)\b", re.I), r"\1"),
]
_ADVERB_LEAD = re.compile(r"^I (never|just|also|really|always|usually|often|sometimes|still|only) ([a-z]+)\b", re.I)
_UNCHANGED_VERBS = frozenset({"can", "could", "would", "will", "should", "might", "must", "used", "had", "was"})
_IRREGULAR_3P = {"have": "has", "do": "does", "go": "goes", "am": "is", "be": "is"}
_POSSESSIVES = [(re.compile(r"\bmy\b", re.I), "their"), (re.compile(r"\bmyself\b", re.I), "themselves")]
_OBJECT_ME = re.compile(r"\bme\b", re.I)


def third_person(statement: str, with_subject: bool) -> str | None:
    """'I like to read.' -> 'Likes to read.' or 'The user likes to read.'; None if unsure.

    Only the leading clause is rewritten; statements with a second "I" are left alone
    rather than turned into broken English (broken grammar must not become a label cue).
    """
    text = statement.strip().rstrip(".!")
    if re.search(r"\bI\b|\bI'", text[1:]):
        return None
    if text.lower().startswith("my "):
        return as_sentence("The user's " + text[3:])
    predicate = None
    adverb = _ADVERB_LEAD.match(text)
    if adverb:
        verb = _third_person_verb(adverb.group(2).lower())
        predicate = f"{adverb.group(1).lower()} {verb}{text[adverb.end() :]}"
    for pattern, replacement in _THIRD_PERSON_LEAD if predicate is None else ():
        if pattern.match(text):
            predicate = pattern.sub(replacement, text, count=1)
            break
    if predicate is None:
        match = _PLAIN_VERB.match(text)
        if not match:
            return None
        predicate = f"{_third_person_verb(match.group(1).lower())} {text[match.end() :]}"
    for pattern, replacement in _POSSESSIVES:
        predicate = pattern.sub(replacement, predicate)
    predicate = _OBJECT_ME.sub("them", predicate)
    return as_sentence(f"The user {predicate}" if with_subject else predicate)


def _third_person_verb(verb: str) -> str:
    if verb in _IRREGULAR_3P:
        return _IRREGULAR_3P[verb]
    if verb.endswith("ed") or verb in _UNCHANGED_VERBS or verb in _IRREGULAR_PAST:
        return verb
    if verb.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if verb.endswith("y") and verb[-2:-1] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def gerund(verb_phrase: str) -> str:
    """'to read books' -> 'reading books'; other phrases are returned unchanged."""
    if not verb_phrase.lower().startswith("to "):
        return verb_phrase
    verb, _, rest = verb_phrase[3:].partition(" ")
    if verb.endswith("ie"):
        ing = verb[:-2] + "ying"
    elif verb.endswith("e") and not verb.endswith(("ee", "ye", "oe")):
        ing = verb[:-1] + "ing"
    elif re.fullmatch(r"[^aeiou]*[aeiou][^aeiouwxy]", verb) and len(verb) <= 4:
        ing = verb + verb[-1] + "ing"  # run -> running, shop -> shopping
    else:
        ing = verb + "ing"
    return f"{ing} {rest}".strip()
