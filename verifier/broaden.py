"""Overgeneralization negatives: a statement broadened past what the user said.

The paper's most common extraction failure (53.9% of problematic attributes) is
overgeneralization: "likes hiking in the Alps" becomes "is a professional mountaineer".
These templates make that failure from a statement's shape (`statements.shape_of`).
Early experiments found that broadened statements made with templates the model never saw
were caught less often (FINDINGS.md), so the templates are many and varied, and those in
HELD_OUT never reach the training split: the validation split reports them separately.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from verifier.statements import Shape, gerund, shape_of
from verifier.words import as_sentence


@dataclass(frozen=True)
class Template:
    id: str
    category: str  # a Shape category, or "any" for templates that wrap the whole statement
    text: str


TEMPLATES: tuple[Template, ...] = (
    # likes: intensity, expertise, exclusivity, identity
    Template("like.obsessed", "like", "I am obsessed with {ing}."),
    Template("like.whole_life", "like", "{Ing} is my whole life."),
    Template("like.expert", "like", "I am an expert when it comes to {ing}."),
    Template("like.since_child", "like", "I have loved {ing} ever since I was a child."),
    Template("like.most", "like", "I {verb} {obj} more than anything else in the world."),
    Template("like.free_time", "like", "I spend all of my free time on {ing}."),
    Template("like.only", "like", "{Ing} is the only thing I care about."),
    Template("like.fanatic", "like", "I would call myself a true fanatic of {ing}."),
    Template("like.career", "like", "I have built my entire career around {ing}."),
    # dislikes: absolute aversion
    Template("dislike.everything", "dislike", "I hate everything about {ing}."),
    Template("dislike.never", "dislike", "I refuse to ever be near {ing}."),
    Template("dislike.angry", "dislike", "I get furious whenever anyone mentions {ing}."),
    Template("dislike.most", "dislike", "{Ing} is the thing I hate most in the world."),
    # possessions and family: always, everyone, many
    Template("have.always", "have", "I have always had {obj}."),
    Template("have.family", "have", "Everyone in my family has {obj}."),
    Template("have.identity", "have", "Having {obj} is the most important part of who I am."),
    Template("have.lifelong", "have", "I have had {obj} for my entire life."),
    Template("have.friends", "have", "All of my friends have {obj} because of me."),
    # roles: best, famous, lifelong
    Template("role.best", "role", "I am the best {noun} in the country."),
    Template("role.lifelong", "role", "I have been {obj} my whole life."),
    Template("role.famous", "role", "I am a world-famous {noun}."),
    Template("role.identity", "role", "Being {obj} is my entire identity."),
    Template("role.renown", "role", "I am a {noun} of international renown."),
    Template("role.family", "role", "I am {obj}, and so is everyone in my family."),
    # states: permanent, extreme
    Template("be.always", "be", "I am always {obj}."),
    Template("be.entire_life", "be", "I have been {obj} my entire life."),
    Template("be.everywhere", "be", "I am {obj} in every part of my life."),
    Template("be.others_say", "be", "Everyone who meets me says I am {obj}."),
    # work: seniority, decades
    Template("work.decades", "work", "I have worked {verb} {obj} for more than thirty years."),
    Template("work.senior", "work", "I hold a senior leadership position {verb} {obj}."),
    Template("work.whole_career", "work", "My whole career has been {verb} {obj}."),
    Template("work.respected", "work", "I am the most respected person working {verb} {obj}."),
    # home: lifelong, generations
    Template("live.whole_life", "live", "I have lived {verb} {obj} my whole life."),
    Template("live.born", "live", "I was born and raised {verb} {obj}."),
    Template("live.homes", "live", "I own several homes {verb} {obj}."),
    Template("live.generations", "live", "My family has lived {verb} {obj} for generations."),
    # favorites: exclusivity
    Template("favorite.only", "favorite", "{Obj} is the only {kind} I can stand."),
    Template("favorite.hate_others", "favorite", "I hate every {kind} except {obj}."),
    Template("favorite.superfan", "favorite", "I am completely obsessed with {obj} and nothing else."),
    # abilities: world class
    Template("ability.world_class", "ability", "I am world-class at it: I can {obj}."),
    Template("ability.teach", "ability", "I teach people professionally how to {obj}."),
    Template("ability.awards", "ability", "I have won national awards because I can {obj}."),
    # any statement: frequency, permanence, reach (wrap the whole statement)
    Template("any.every_day", "act", "I {obj} every single day."),
    Template("any.always", "act", "I always {obj}, without exception."),
    Template("any.whole_life", "any", "{s}, and I have done so my whole life."),
    Template("any.most_important", "any", "{s}, and it is the most important thing in my life."),
    Template("any.known_for", "any", "{s}, and I am known for it everywhere I go."),
    Template("any.family_too", "any", "{s}, and everyone in my family is the same."),
    Template("any.defines", "any", "{s}. It defines who I am."),
)

# Held out of training to measure generalization to unseen broadening patterns: one or two
# per category, chosen so that every category keeps at least two training templates.
HELD_OUT = frozenset(
    {
        "like.fanatic",
        "like.career",
        "dislike.most",
        "have.friends",
        "role.renown",
        "be.others_say",
        "work.respected",
        "live.generations",
        "favorite.superfan",
        "ability.awards",
        "any.family_too",
        "any.defines",
    }
)

_ARTICLE = re.compile(r"^(?:a|an|the)\s+", re.I)


def _fields(statement: str, shape: Shape) -> dict[str, str]:
    ing = gerund(shape.obj)
    return {
        "obj": shape.obj,
        "Obj": shape.obj[:1].upper() + shape.obj[1:],
        "ing": ing,
        "Ing": ing[:1].upper() + ing[1:],
        "verb": shape.verb.lower() or "like",
        "kind": shape.kind.lower() or "thing",
        "noun": _ARTICLE.sub("", shape.obj),
        "s": statement.strip().rstrip(".!"),
    }


def templates_for(shape: Shape | None, held_out: bool) -> list[Template]:
    """Templates that fit the shape, from the held-out set or from the training set."""
    categories = {"any"} | ({shape.category} if shape else set())
    if shape and shape.category in {"like", "dislike", "have", "work", "live", "ability"}:
        categories.add("act")  # these are also plain "I <verb> ..." statements
    return [t for t in TEMPLATES if t.category in categories and (t.id in HELD_OUT) == held_out]


def broaden(statement: str, rng: random.Random, held_out: bool = False) -> tuple[str, str] | None:
    """(broadened statement, template id), preferring shape-specific templates over wrappers."""
    shape = shape_of(statement)
    candidates = templates_for(shape, held_out)
    if not candidates:
        return None
    specific = [t for t in candidates if t.category != "any"]
    # Two in three draws use a shape-specific template, so wrappers do not dominate.
    pool = specific if specific and rng.random() < 2 / 3 else candidates
    template = rng.choice(pool)
    if shape is None:
        shape = Shape("any", "")
    if template.category == "act":
        shape = Shape("act", _verb_phrase(statement, shape))
    return as_sentence(template.text.format(**_fields(statement, shape))), template.id


def _verb_phrase(statement: str, shape: Shape) -> str:
    """'I like to read.' -> 'like to read' (everything after the leading "I")."""
    text = statement.strip().rstrip(".!")
    return text[2:] if text[:2].lower() == "i " else shape.obj
