"""Small word-level helpers shared by the pair builder and the lexical baseline."""

from __future__ import annotations

import re

# Function words that carry no attribute content; "not"/"never" are deliberately absent so
# that a negated attribute does not look like its positive twin to the overlap measures.
# fmt: off
STOPWORDS = frozenset({
    "a", "an", "the", "and", "or", "but", "if", "so", "of", "to", "in", "on", "at", "by", "for", "with",
    "from", "about", "as", "into", "than", "then", "i", "me", "my", "mine", "myself", "you", "your",
    "yours", "we", "our", "us", "he", "she", "him", "her", "his", "they", "them", "their", "it", "its",
    "is", "am", "are", "was", "were", "be", "been", "being", "do", "does", "did", "have", "has", "had",
    "having", "will", "would", "can", "could", "should", "may", "might", "must", "shall", "this",
    "that", "these", "those", "there", "here", "what", "which", "who", "whom", "whose", "when", "where",
    "why", "how", "all", "any", "some", "just", "also", "really", "very", "too", "much", "many", "more",
    "most", "lot", "lots", "like", "get", "got", "go", "going", "im", "ive", "id", "ill", "dont",
    "thats", "theres", "s", "t", "m", "ve", "d", "ll", "re",
})
# fmt: on

_TOKEN = re.compile(r"[a-z0-9]+")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# PersonaChat-derived files are lower-cased and space-tokenized ("i have a dog ."); the MSC
# files are not. Normalizing both keeps tokenization style from becoming a label cue.
_SPACE_BEFORE_PUNCT = re.compile(r"\s+([.,!?;:%)])")
_SPACE_IN_CONTRACTION = re.compile(r"\s+'\s*(s|m|re|ve|ll|d|t)\b")
_LONE_I = re.compile(r"\bi\b")


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.lower().replace("'", ""))


def content_words(text: str) -> set[str]:
    return {w for w in tokens(text) if w not in STOPWORDS}


def stem(word: str) -> str:
    """A light suffix strip so "parents"/"parent", "cooking"/"cook" match; not a linguistic stemmer."""
    for suffix in ("'s", "ing", "ies", "es", "ed", "s"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + ("y" if suffix == "ies" else "")
    return word


def stemmed_overlap_share(attribute: str, evidence: str) -> float:
    """`overlap_share` on stemmed content words: "runs marathons" is all in "I run marathons."."""
    wanted = {stem(w) for w in content_words(attribute)}
    if not wanted:
        return 0.0
    return len(wanted & {stem(w) for w in content_words(evidence)}) / len(wanted)


def overlap_share(attribute: str, evidence: str) -> float:
    """Share of the attribute's content words that occur in the evidence (0 when it has none)."""
    wanted = content_words(attribute)
    if not wanted:
        return 0.0
    return len(wanted & content_words(evidence)) / len(wanted)


def split_sentences(text: str) -> list[str]:
    return [s.strip() for s in _SENTENCE_END.split(text.strip()) if s.strip()]


def detokenize(text: str) -> str:
    """'i do not have a dog . you ?' -> 'I do not have a dog. You?'"""
    text = " ".join(text.split())
    text = _SPACE_BEFORE_PUNCT.sub(r"\1", text)
    text = _SPACE_IN_CONTRACTION.sub(r"'\1", text)
    text = text.replace(" n't", "n't").replace("( ", "(")
    text = _LONE_I.sub("I", text)
    sentences = split_sentences(text)
    return " ".join(s[:1].upper() + s[1:] for s in sentences)


def as_sentence(text: str) -> str:
    text = text.strip()
    if not text:
        return text
    text = text[:1].upper() + text[1:]
    return text if text[-1] in ".!?" else text + "."
