"""Persona triples (PersonaExt, Dialogue NLI) rendered as first-person statements.

Only relations whose tails read cleanly as a statement are rendered; the rest are skipped
rather than turned into sentences a person would not write.
"""

from __future__ import annotations

import re

from verifier.words import as_sentence, content_words

_LIKE = "I like {t}"
_HAVE = "I have {a}{t}"
RENDERINGS: dict[str, str] = {
    "like_activity": _LIKE,
    "like_food": _LIKE,
    "like_drink": _LIKE,
    "like_animal": _LIKE,
    "like_general": _LIKE,
    "like_color": _LIKE,
    "like_music": _LIKE,
    "like_sport": _LIKE,
    "like_watching": "I like watching {t}",
    "like_read": "I like reading {t}",
    "dislike": "I dislike {t}",
    "dislike_food": "I dislike {t}",
    "dislike_activity": "I dislike {t}",
    "dislike_animal": "I dislike {t}",
    "dislike_sport": "I dislike {t}",
    "have_pet": _HAVE,
    "have_vehicle": _HAVE,
    "own": _HAVE,
    "have_sibling": _HAVE,
    "have_family": _HAVE,
    "have_chidren": _HAVE,  # sic: the schema's spelling
    "have_children": _HAVE,
    "live_in_citystatecountry": "I live in {T}",
    "employed_by_company": "I work at {T}",
    "want_job": "I want to be {a}{t}",
    "has_ability": "I can {t}",
    "diet": "I am {t}",
    "job_status": "I am {t}",
    "marital_status": "I am {t}",
}
# "I am {t}" reads as a statement only for these tails (the files also hold "internship", "doctor").
_STATE_TAILS = frozenset(
    {
        "vegan",
        "vegetarian",
        "kosher",
        "pescatarian",
        "retired",
        "unemployed",
        "employed",
        "married",
        "single",
        "divorced",
        "engaged",
        "widowed",
    }
)
_FAVORITE_KINDS = {
    "favorite_color": "color",
    "favorite_season": "season",
    "favorite_show": "show",
    "favorite_movie": "movie",
    "favorite_book": "book",
    "favorite_animal": "animal",
    "favorite_drink": "drink",
    "favorite_food": "food",
    "favorite_music": "music",
    "favorite_music_artist": "band",
    "favorite_sport": "sport",
    "favorite_hobby": "hobby",
}
_COUNTED = re.compile(r"^(?:\d+|a|an|one|two|three|four|five|six|some|many|several|my)\b", re.I)


def render(relation: str, tail: str) -> str | None:
    """'have_pet', 'dog' -> 'I have a dog.'; None for relations without a clean rendering."""
    tail = " ".join(tail.split())
    if not tail:
        return None
    if relation in _FAVORITE_KINDS:
        return as_sentence(f"My favorite {_FAVORITE_KINDS[relation]} is {tail}")
    pattern = RENDERINGS.get(relation)
    if pattern is None or (pattern == "I am {t}" and tail.lower() not in _STATE_TAILS):
        return None
    return as_sentence(pattern.format(t=tail, T=tail.title(), a=_article(tail)))


def _article(tail: str) -> str:
    # Plurals and counted tails ("2 cats", "dogs") take no article.
    if _COUNTED.match(tail) or tail.endswith("s"):
        return ""
    return "an " if tail[0].lower() in "aeiou" else "a "


def tail_is_said(tail: str, utterance: str) -> bool:
    """True when every content word of the tail is in the utterance (the triple is grounded)."""
    wanted = content_words(tail)
    return bool(wanted) and wanted <= content_words(utterance)
