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


@dataclass(frozen=True)
class Antonym:
    """One way of saying the opposite preference: `lead` replaces "I <verb>" ("I am not a fan of")."""

    id: str
    lead: str


# The opposite preference, said several ways. With "I hate" as the only antonym of "I like",
# the model learned the words "hate" and "not" instead of contradiction ("dislikes grilling"
# passed the gate against "I love grilling"). Those in HELD_OUT_ANTONYMS never reach training:
# the val split reports them apart, to measure phrasings the model has not seen.
AGAINST: tuple[Antonym, ...] = (
    Antonym("against.hate", "I hate"),
    Antonym("against.do_not_like", "I do not like"),
    Antonym("against.dislike", "I dislike"),
    Antonym("against.cant_stand", "I can't stand"),
    Antonym("against.do_not_enjoy", "I do not enjoy"),
    Antonym("against.detest", "I detest"),
    Antonym("against.dont_care_for", "I don't care for"),
    Antonym("against.no_interest", "I have no interest in"),
    Antonym("against.not_fan", "I am not a fan of"),
    Antonym("against.avoid", "I avoid"),
    Antonym("against.loathe", "I loathe"),
)
FOR: tuple[Antonym, ...] = (
    Antonym("for.love", "I love"),
    Antonym("for.like", "I like"),
    Antonym("for.enjoy", "I enjoy"),
    Antonym("for.big_fan", "I am a big fan of"),
    Antonym("for.adore", "I adore"),
    Antonym("for.really_like", "I really like"),
    Antonym("for.passionate", "I am passionate about"),
    Antonym("for.cant_get_enough", "I can't get enough of"),
)
HELD_OUT_ANTONYMS = frozenset(
    {"against.not_fan", "against.avoid", "against.loathe", "for.passionate", "for.cant_get_enough"}
)

_LIKING = re.compile(r"^I (?P<verb>love|like|enjoy|adore|prefer) (?P<obj>.+)$", re.I)
_DISLIKING = re.compile(r"^I (?P<verb>hate|dislike|can't stand|cannot stand|detest|loathe) (?P<obj>.+)$", re.I)
# "I prefer tea over coffee" has no opposite of the same shape ("I hate tea over coffee").
_COMPARISON = re.compile(r"\b(?:over|than|rather|instead)\b|\S\s+to\b", re.I)


def negate(statement: str, variant: int = 0, held_out: bool = False) -> str | None:
    """A contradiction of the statement, or None when the rules cannot build one.

    `variant` picks among the phrasings ("do not" or "never"; for a preference, one of the
    antonyms), so that no one phrasing becomes the cue the model learns for contradiction.
    `held_out` picks the preference antonyms kept out of training instead of the others.
    """
    made = contradict(statement, variant, held_out)
    return made[0] if made else None


def contradict(statement: str, variant: int = 0, held_out: bool = False) -> tuple[str, str] | None:
    """(contradiction, antonym id); the id is "" when the statement was negated by rule."""
    text = _LEADING_ADVERB.sub("I ", statement.strip().rstrip(".!"))
    flipped = _flip_preference(text, variant, held_out)  # before the check: "I can't stand X" flips
    if flipped is not None:
        return flipped
    if _NEGATED_ALREADY.match(text):
        return None
    negated = _negate_by_rule(text, variant)
    return (negated, "") if negated else None


def _flip_preference(text: str, variant: int, held_out: bool) -> tuple[str, str] | None:
    """'I love X' -> 'I dislike X', 'I can't stand X' -> 'I enjoy X', one antonym per variant."""
    liking = _LIKING.match(text)
    disliking = _DISLIKING.match(text)
    match = liking or disliking
    if match is None or (liking and liking["verb"].lower() == "prefer" and _COMPARISON.search(liking["obj"])):
        return None
    forms = [a for a in (AGAINST if liking else FOR) if (a.id in HELD_OUT_ANTONYMS) == held_out]
    antonym = forms[variant % len(forms)]
    return as_sentence(f"{antonym.lead} {gerund(match['obj'])}"), antonym.id


def _negate_by_rule(text: str, variant: int) -> str | None:
    for pattern, replacement in _NEGATIONS:
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
