"""A preference the user's own words state the other way round: a deterministic check beside the verifier.

The shipped verifier lets "The user dislikes grilling." through against "USER: I love grilling, especially in
the summer." (0.987), and a retraining with 11 antonyms did not teach it the flip (docs/verifier.md,
"Contradicted preferences"). A preference stored the wrong way round is the most harmful memory the service
can keep: the answer it shapes does the opposite of what the user asked for. So the gate also reads the
words: an attribute that likes (or dislikes) something is contradicted when a user turn of its evidence says
the opposite about the same thing and no user turn says the same.

Deliberately narrow (a rule set, not a model): only explicit liking and disliking phrases, only the user's
own turns, and the thing must share at least half of the attribute's content words (stemmed). Anything it
cannot read ("used to love", "I don't hate", comparisons) is left to the verifier. Measured on the verifier's
val pairs with `python -m verifier.polarity` (docs/verifier.md).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from verifier.snippet import USER_MARK
from verifier.words import content_words, stem

LIKES, DISLIKES = 1, -1

_NOT = r"(?:do not|does not|did not|don't|doesn't|didn't|never|no longer)"
# Longest phrases first: "do not like" must win over "like", "not a fan of" over "a fan of".
_PHRASES: tuple[tuple[int, str], ...] = (
    (DISLIKES, rf"{_NOT} (?:really )?(?:like|love|enjoy|care for)s?"),
    (DISLIKES, r"(?:am|is|are|'m|'s) not (?:a |really a )?(?:big |huge )?fan of"),
    (DISLIKES, r"(?:have|has) no interest in"),
    (DISLIKES, r"(?:can't|cannot|can not|could not|couldn't) stand"),
    (DISLIKES, r"(?:hate|hates|hated|dislike|dislikes|disliked|detest|detests|loathe|loathes|despise|despises)"),
    (DISLIKES, r"(?:avoid|avoids|avoided)"),
    (LIKES, r"(?:can't|cannot) get enough of"),
    (LIKES, r"(?:am|is|are|'m|'s) (?:a |really a )?(?:big |huge )?fan of"),
    (LIKES, r"(?:am|is|are|'m|'s) (?:really )?(?:passionate about|fond of)"),
    (LIKES, r"(?:really )?(?:love|loves|loved|like|likes|liked|enjoy|enjoys|enjoyed|adore|adores|adored)"),
)
_PHRASE = re.compile(
    r"\b(?:" + "|".join(f"(?P<p{i}>{pattern})" for i, (_, pattern) in enumerate(_PHRASES)) + r")\b", re.I
)
# What the user is unsure of or no longer holds, and comparisons ("I like tea more than coffee"): not read.
_UNREADABLE = re.compile(
    r"\b(?:used to|would|wouldn't|might|maybe|if|than|rather|instead|over|whether|what|who|people|everyone)\b", re.I
)
# A stance the rest of its sentence qualifies ("I like pudding, but it makes me gassy", "I like all music except
# country"): not read either.
_QUALIFIED = re.compile(r"\b(?:but|though|although|however|except|besides|apart from|other than|unless)\b", re.I)
# The liked thing ends where its clause does.
_CLAUSE_END = re.compile(r"[,;:()]|\b(?:because|since|especially|when|while|and i|so)\b", re.I)
# Whose stance it is: the words before the phrase, adverbs aside, must be the user ("I", "The user") or nobody
# (an attribute fragment, "dislikes grilling"; a turn's "Really love high school."). "I know you do not like
# Taylor Swift", "my boyfriend does not like hiking", "my wife loves crowds" are someone else's.
_ADVERBS = frozenset(
    {"really", "absolutely", "just", "also", "still", "totally", "so", "truly", "actually", "do", "does",
     "definitely", "genuinely", "honestly", "always", "generally", "too", "quite"}
)  # fmt: skip
_SUBJECTS = ((), ("i",), ("the", "user"), ("user",))
# At least this share of the attribute's content words must be in the user's phrase about the same thing.
MIN_SHARED = 0.5


@dataclass(frozen=True)
class Stance:
    polarity: int  # LIKES or DISLIKES
    thing: frozenset[str]  # stemmed content words of what is liked or disliked


def stances(text: str) -> list[Stance]:
    """Every liking or disliking phrase of `text` that can be read, with the thing it is about."""
    out = []
    for sentence in re.split(r"(?<=[.!?;])\s+", text.replace("\u2019", "'")):
        matches = list(_PHRASE.finditer(sentence))
        for n, match in enumerate(matches):
            before = re.split(r"[,:()]", sentence[: match.start()])[-1]  # the phrase's own clause
            after = sentence[match.end() :]
            if not _the_users(before) or _UNREADABLE.search(before) or _QUALIFIED.search(after):
                continue
            # the thing ends at its clause's end or at the next phrase ("I love strawberries hate pickles")
            end = matches[n + 1].start() - match.end() if n + 1 < len(matches) else len(after)
            rest = _CLAUSE_END.split(after[:end], maxsplit=1)[0]
            if _UNREADABLE.search(rest):
                continue
            thing = frozenset(_root(w) for w in content_words(rest))
            if thing:
                polarity = next(_PHRASES[i][0] for i in range(len(_PHRASES)) if match.group(f"p{i}"))
                out.append(Stance(polarity, thing))
    return out


def _root(word: str) -> str:
    """verifier.words.stem, with a doubled last consonant undone: "running" and "run" meet."""
    root = stem(word)
    if len(root) >= 4 and root[-1] == root[-2] and root[-1] not in "aeiousl":
        return root[:-1]
    return root


def _the_users(before: str) -> bool:
    """Whether the words before a phrase make it the user's stance (see _SUBJECTS)."""
    words = [w.strip("'\"").lower() for w in re.findall(r"[\w'\"]+", before)]
    while words and words[-1] in _ADVERBS:
        words.pop()
    if words and (words[-1] == "i" or (words[-1] == "and" and words[0] == "i")):  # "I train and love to run"
        return True
    return tuple(w for w in words if w not in ("yes", "yeah", "well", "oh", "and", "but")) in _SUBJECTS


def user_turns(snippet: str) -> list[str]:
    """The user's own turns of a verifier snippet (verifier.snippet.format_snippet)."""
    return [line[len(USER_MARK) :].strip() for line in snippet.splitlines() if line.startswith(USER_MARK)]


def contradicted(snippet: str, attribute: str) -> bool:
    """True when the attribute likes (dislikes) something the user's turns say they dislike (like), and no user
    turn says it the attribute's way."""
    claimed = stances(attribute)
    if len(claimed) != 1:  # none, or more than one stance in one attribute: not read
        return False
    claim = claimed[0]
    said = [s for turn in user_turns(snippet) for s in stances(turn)]
    about = [s for s in said if len(claim.thing & s.thing) >= MIN_SHARED * len(claim.thing)]
    return any(s.polarity != claim.polarity for s in about) and not any(s.polarity == claim.polarity for s in about)


def main(argv: Sequence[str] | None = None) -> int:
    """How often the check fires on the verifier's pairs, by kind; with --model, what gets through the gate
    (the model's score at its threshold) without and with the check."""
    from verifier.dataset import DEFAULT_DATA_DIR
    from verifier.eval_cli import load_pairs
    from verifier.runtime import Verifier

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA_DIR)
    parser.add_argument("--split", choices=["val", "all"], default="val", help="'all': train and val pairs")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", type=Path, help="a verifier model directory (models/verifier) to gate with")
    parser.add_argument("--examples", type=int, default=0, help="print this many flagged pairs of each kind")
    args = parser.parse_args(argv)
    pairs = load_pairs(args.data, args.split, args.seed)
    fired = [contradicted(p.snippet, p.attribute) for p in pairs]
    passed = [True] * len(pairs)
    if args.model:
        verifier = Verifier.load(args.model, threads=2)
        passed = [verifier.supported(s) for s in verifier.score([(p.snippet, p.attribute) for p in pairs])]
    shown: Counter[str] = Counter()
    rows: dict[str, Counter[str]] = {}
    for p, fires, passes in zip(pairs, fired, passed, strict=True):
        row = rows.setdefault(p.report_kind, Counter())
        row.update(pairs=1, fired=fires, model=passes, gate=passes and not fires)
        if fires and shown[p.report_kind] < args.examples:
            shown[p.report_kind] += 1
            print(f"[{p.report_kind}] {p.attribute!r}\n    {p.snippet!r}")
    print("| kind | pairs | check fires | through the model | through model and check |")
    print("|---|---:|---:|---:|---:|")
    for kind, r in sorted(rows.items()):
        through = f"{r['model'] / r['pairs']:.3f} | {r['gate'] / r['pairs']:.3f}" if args.model else "- | -"
        print(f"| {kind} | {r['pairs']} | {r['fired']} ({r['fired'] / r['pairs']:.3f}) | {through} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
