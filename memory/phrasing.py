"""How memories are phrased: the extractor's subject-less third person ("is vegetarian") and the statement
the selector reads ("The user is vegetarian.").

The extractor is trained to write first-person sentences as subject-less third person (`third_person`,
memory.extractor_train), so that is how memories are stored and merged. The selector's training data are
statements with a subject ("The user is vegetarian.", PrefEval's "I am vegetarian."), and it ranks memories
worse without one (docs/selector.md, "Memory form"), so it is given each memory as `as_statement`.
"""

from __future__ import annotations

import re

_OPENINGS = [  # (first-person opening, third-person replacement); longest first
    (r"i have been|i've been|ive been", "has been"),
    (r"i have not|i haven't|i havent", "has not"),
    (r"i do not|i don't|i dont", "does not"),
    (r"i did not|i didn't|i didnt", "did not"),
    (r"i am not|i'm not|im not", "is not"),
    (r"i was not|i wasn't", "was not"),
    (r"i cannot|i can't|i cant", "cannot"),
    (r"i will not|i won't", "will not"),
    (r"i am|i'm|im", "is"),
    (r"i have|i've|ive", "has"),
    (r"i'd", "would"),
    (r"i'll", "will"),
]
# Verb forms that stay as they are after "I" (modals, past tenses).
_UNCHANGED_WORDS = (
    "can could will would should might must may was were used had did went got saw made took came bought found "
    "grew left lost met ran said sold spent taught thought told won wrote began broke brought built drove felt "
    "fell flew gave kept knew led paid put quit rode sang sat slept spoke stood swam understood wore hurt became "
    "chose caught forgot heard held let meant set shot threw woke ate drank read"
)
_ADVERB_WORDS = (
    "also really just recently never always often usually still only sometimes currently actually definitely "
    "mostly already even especially truly rarely occasionally generally absolutely totally"
)
_UNCHANGED = frozenset(_UNCHANGED_WORDS.split())
_ADVERBS = frozenset(_ADVERB_WORDS.split())
# Verbs ending in -ly; any other -ly word before the verb is an adverb ("I strongly dislike ...").
_LY_VERB_WORDS = "apply reply rely supply fly comply multiply imply ally rally tally bully"
_LY_VERBS = frozenset(_LY_VERB_WORDS.split())
_MIDDLE = [  # first-person words after the opening -> singular "they"
    (r"\bI'm\b|\bI am\b", "they are"),
    (r"\bI was\b", "they were"),
    (r"\bI've\b", "they've"),
    (r"\bI'd\b", "they'd"),
    (r"\bI'll\b", "they'll"),
    (r"\bI\b", "they"),
    (r"\bmyself\b", "themselves"),
    (r"\bmine\b", "theirs"),
    (r"\bmy\b", "their"),
    (r"\bme\b", "them"),
]


def third_person(sentence: str) -> str:
    """'I like to read.' -> 'likes to read'; 'My son is in junior high.' -> 'their son is in junior high'."""
    text = sentence.strip().rstrip(".!")
    lowered = text.casefold()
    for pattern, replacement in _OPENINGS:
        match = re.match(rf"(?:{pattern})\b", lowered)
        if match:
            text = replacement + text[match.end() :]
            break
    else:
        if re.match(r"i\s", lowered):
            text = _conjugated(text[2:])
        elif re.match(r"my\s", lowered):
            text = "their" + text[2:]
    for pattern, replacement in _MIDDLE:
        text = re.sub(pattern, replacement, text, flags=re.IGNORECASE)
    return text.strip()


def _conjugated(rest: str) -> str:
    """'like to read' -> 'likes to read', 'really love dogs' -> 'really loves dogs'."""
    words = rest.split(" ")
    i = 0
    while i < len(words) - 1 and (
        words[i].casefold() in _ADVERBS or (words[i].casefold().endswith("ly") and words[i].casefold() not in _LY_VERBS)
    ):
        i += 1
    verb = words[i]
    low = verb.casefold()
    if low in _UNCHANGED or low.endswith("ed") or not low.isalpha():
        pass
    elif low in {"do", "go"}:
        verb += "es"
    elif low == "have":
        verb = "has"
    elif re.search(r"(s|sh|ch|x|z)$", low):
        verb += "es"
    elif re.search(r"[^aeiou]y$", low):
        verb = verb[:-1] + "ies"
    else:
        verb += "s"
    words[i] = verb
    return " ".join(words)


def as_extracted(attribute: str) -> str:
    """An attribute as the extractor phrases memories: 'The user is vegetarian.' -> 'is vegetarian', "The
    user's son ..." -> 'their son ...', 'I am vegetarian.' -> 'is vegetarian'; other texts without their
    final full stop."""
    text = attribute.strip().rstrip(".")
    lowered = text.casefold()
    for subject, replacement in (("the user's ", "their "), ("the user ", "")):
        if lowered.startswith(subject):
            return replacement + text[len(subject) :]
    if lowered.startswith(("i ", "i'", "my ")):
        return third_person(text)
    return text


def as_statement(attribute: str) -> str:
    """The extractor's phrasing with the subject put back: 'is vegetarian' -> 'The user is vegetarian.' The
    selector's form of a memory: its training data are statements (selector.data)."""
    memory = as_extracted(attribute)
    if memory.casefold().startswith("their "):
        return f"The user's {memory[len('their ') :]}."
    return f"The user {memory}."
