"""Cheap checks of a claim against the passages it cites: values the passages never state, and a
negation or a plan that the claim drops.

These catch what word overlap and embedding similarity pass through: an answer from the model's
memory (a default value, a version, a name no cited passage contains), "Yes, X supports OCR" against
"X has no OCR", and a roadmap item ("planned") presented as shipped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rag.text import STOP_WORDS, split_sentences, strip_citations

_UNIT_BYTES = {
    "b": 1,
    "byte": 1,
    "bytes": 1,
    "kb": 1000,
    "kib": 1024,
    "mb": 1000**2,
    "mib": 1024**2,
    "gb": 1000**3,
    "gib": 1024**3,
    "tb": 1000**4,
    "tib": 1024**4,
}
_NUMBER_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "twenty": 20, "thirty": 30, "forty": 40,
    "fifty": 50, "hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9,
    "once": 1, "twice": 2, "single": 1, "double": 2, "dozen": 12,
}  # fmt: skip
_SCALE_WORDS = {"thousand": 1000, "million": 10**6, "billion": 10**9}

_VERSION = re.compile(r"\bv?\d+(?:\.\d+){2,}\b|\bv\d+(?:\.\d+)*\b", re.IGNORECASE)
_NUMBER = re.compile(
    r"(?<![\w.])(\d{1,3}(?:,\d{3})+|\d+(?:_\d{3})+|\d+(?:\.\d+)?)(?:\s*(%|[kmgt]i?b\b|bytes?\b|"
    r"thousand\b|million\b|billion\b))?",
    re.IGNORECASE,
)
_CODE = re.compile(r"`([^`\n]{1,80})`")
_IDENTIFIER = re.compile(
    r"(?<![\w-])(?:--?[a-z][\w-]*|(?:[\w$]+\.)+[\w$]+(?:\(\))?|[a-z]+[A-Z]\w*|\w+_\w+|/[\w.-]+(?:/[\w.-]+)+)",
)
_NAME = re.compile(r"\b[A-Z][\w'’-]*(?:\s+[A-Z][\w'’-]*)*")
_NEGATION = re.compile(
    r"\b(?:not|no|never|none|nothing|neither|nor|cannot|without|lacks?|unable|unsupported)\b|n['’]t\b",
    re.IGNORECASE,
)
_PLAN = re.compile(
    r"\b(?:planned|plans?|roadmap|upcoming|future|later release|next release|not yet|will be|"
    r"proposed|experimental|coming)\b",
    re.IGNORECASE,
)
_WORD = re.compile(r"[A-Za-z0-9]+")


@dataclass(frozen=True)
class ClaimCheck:
    """What a claim asserts that its evidence does not: absent values, a dropped negation or plan."""

    ungrounded_values: tuple[str, ...] = ()
    negation_mismatch: bool = False
    plan_mismatch: bool = False

    @property
    def contradicted(self) -> bool:
        """True when any check failed: the claim is not what the passages say."""
        return bool(self.ungrounded_values) or self.negation_mismatch or self.plan_mismatch

    def reasons(self) -> list[str]:
        """Plain-language reasons, for showing next to an unsupported sentence."""
        found = [f"{value!r} is not in the cited passages" for value in self.ungrounded_values]
        if self.negation_mismatch:
            found.append("the cited passage negates what the sentence asserts")
        if self.plan_mismatch:
            found.append("the cited passage describes a plan, not something that exists")
        return found


def _number_forms(match: re.Match[str]) -> set[str]:
    raw, unit = match.group(1), (match.group(2) or "").lower()
    value = float(raw.replace(",", "").replace("_", ""))
    forms = {_canonical(value)}
    if unit in _UNIT_BYTES:
        forms.add(_canonical(value * _UNIT_BYTES[unit]))
    elif unit in _SCALE_WORDS:
        forms.add(_canonical(value * _SCALE_WORDS[unit]))
    return forms


def _canonical(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(round(value, 6))


def value_forms(text: str) -> set[str]:
    """Every normalised value a text states: numbers (16,384 = 16384 = 16 KiB, two = 2), versions,
    code identifiers, flags, paths and names, lower-cased."""
    forms: set[str] = set()
    for match in _VERSION.finditer(text):
        forms.add(match.group(0).lower().lstrip("v"))
    for match in _NUMBER.finditer(text):
        forms |= _number_forms(match)
    for word in _WORD.findall(text):
        if word.lower() in _NUMBER_WORDS:
            forms.add(str(_NUMBER_WORDS[word.lower()]))
    forms |= {_identifier(m) for m in _CODE.findall(text)}
    forms |= {_identifier(m.group(0)) for m in _IDENTIFIER.finditer(text)}
    forms |= {w.lower() for w in _WORD.findall(text)}
    return forms


def _identifier(text: str) -> str:
    return text.strip().strip("`").removesuffix("()").rstrip(".,;:").lower()


def claim_values(claim: str) -> list[str]:
    """The values a claim asserts that a passage must state for it to be grounded: numbers, versions,
    identifiers, flags, paths and proper names (not its first word, nor common words)."""
    text = strip_citations(claim)
    values: list[str] = [m.group(0) for m in _VERSION.finditer(text)]
    covered = [m.span() for m in _VERSION.finditer(text)]
    for match in _NUMBER.finditer(text):
        if not any(a <= match.start() < b for a, b in covered):
            values.append(match.group(0))
    values += [m for m in _CODE.findall(text)]
    values += [m.group(0) for m in _IDENTIFIER.finditer(text) if not _is_prose(m.group(0))]
    for match in _NAME.finditer(text):
        words = [w for w in match.group(0).split() if w.lower().strip("'’s") not in STOP_WORDS]
        if match.start() == _first_word_start(text) and words and words[0] == match.group(0).split()[0]:
            words = words[1:]
        values += [w.removesuffix("'s").removesuffix("’s") for w in words]
    return list(dict.fromkeys(v for v in values if v.strip()))


def _is_prose(token: str) -> bool:
    """A dotted token that is only an abbreviation or a decimal (e.g., i.e., 1.5), not an identifier."""
    return bool(re.fullmatch(r"(?:[a-z]\.)+[a-z]?|\d+(?:\.\d+)*", token, re.IGNORECASE))


def _first_word_start(text: str) -> int:
    match = re.search(r"\w", text)
    return match.start() if match else 0


def _value_forms_of(value: str) -> set[str]:
    forms = value_forms(value)
    words = {w.lower() for w in _WORD.findall(value)}
    identifiers = {_identifier(value)}
    return (forms - words) | identifiers if forms - words else identifiers | words


def ungrounded_values(claim: str, evidence: Sequence[str], question: str = "") -> list[str]:
    """The claim's values that no evidence text (nor the question, whose premises the claim may
    repeat) states, in any normalised form."""
    known = value_forms(" ".join(evidence)) | value_forms(question)
    lowered = " ".join((*evidence, question)).lower()
    words = {w.lower() for w in _WORD.findall(lowered)}
    missing = []
    for value in claim_values(claim):
        forms = _value_forms_of(value)
        if forms & known or _identifier(value) in lowered or _same_stem(value, words):
            continue
        missing.append(value)
    return missing


def _same_stem(value: str, words: set[str]) -> bool:
    """A name stated in another inflection (Libyan ~ Libya, Galliformes ~ galliform): all but its last
    two letters, at least four, begin a word of the evidence."""
    if not value.isalpha() or len(value) < 5:
        return False
    prefix = value.lower()[: max(4, len(value) - 2)]
    return any(word.startswith(prefix) or prefix.startswith(word) and len(word) >= 4 for word in words)


def _content_words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text) if w.lower() not in STOP_WORDS and not w.isdigit()}


def best_sentence(claim: str, evidence: Iterable[str]) -> tuple[str, float]:
    """The evidence sentence sharing the largest part of the claim's content words, and that part."""
    words = _content_words(strip_citations(claim))
    best, share = "", 0.0
    for passage in evidence:
        for sentence in split_sentences(passage):
            overlap = len(words & _content_words(sentence)) / max(len(words), 1)
            if overlap > share:
                best, share = sentence, overlap
    return best, share


def check_claim(
    claim: str, evidence: Sequence[str], question: str = "", min_overlap: float = 0.5, min_words: int = 3
) -> ClaimCheck:
    """Check a claim against its cited evidence: values it states that no passage states, and whether
    the evidence sentence it rests on (sharing at least `min_overlap` of its content words, of which it
    has at least `min_words`: a bare phrase rests on no sentence) differs from it in negation, or
    describes a plan while the claim does not."""
    text = strip_citations(claim)
    missing = tuple(ungrounded_values(text, evidence, question))
    sentence, share = best_sentence(text, evidence)
    aligned = share >= min_overlap and len(_content_words(text)) >= min_words
    negation = aligned and bool(_NEGATION.search(sentence)) != bool(_NEGATION.search(text))
    plan = aligned and bool(_PLAN.search(sentence)) and not _PLAN.search(text)
    return ClaimCheck(missing, negation, plan)
