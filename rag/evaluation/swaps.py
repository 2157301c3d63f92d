"""Unanswerable questions generated from answerable ones, in the manner of Gautam et al. (2023).

An answerable question is changed so that its gold paragraph no longer answers it:

- `entity`, `number`, `date`: a proper name, a number or a date of the question is swapped for another
  of the same kind taken from the same article, one that the gold paragraph does not contain (checked,
  as is that the original value does occur in the gold paragraph, so the question's constraint was
  anchored there);
- `antonym`: a word of the question is swapped for its antonym from a small built-in list, when the
  gold paragraph does not contain the antonym;
- `negation`: the question's first auxiliary verb is negated (`was` -> `wasn't`, `did` -> `didn't`),
  when the question holds no negation yet and no sentence of the gold paragraph that holds a gold
  answer is negated.

Values are found by patterns, not by a tagger: a proper name is a run of capitalised words (a single
word counts only when the article never writes it in lower case), so a person may be swapped for a
place; the checks above keep the swapped question unanswerable from its gold paragraph, not from
every paragraph of the article (SQuAD 2.0's own crowd-written questions have the same scope).
Every choice is drawn from a generator seeded by the seed and the question's id: the same input and
seed give the same output.
"""

from __future__ import annotations

import functools
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

VALUE_KINDS = ("entity", "number", "date")
KINDS = (*VALUE_KINDS, "antonym", "negation")

MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)
_MONTH = "(?:" + "|".join(MONTHS) + ")"
_DATE = re.compile(
    rf"\b(?:{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?,?\s+\d{{4}}"  # June 4, 1998
    rf"|\d{{1,2}}\s+{_MONTH}\s+\d{{4}}"  # 4 June 1998
    rf"|{_MONTH}\s+\d{{4}}"  # June 1998
    rf"|{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?"  # June 4
    r"|\d{4}-\d{2}-\d{2}"  # 1998-06-04
    r"|(?:1[0-9]|20)\d{2}s?)\b"  # 1998, 1990s
)
_NUMBER = re.compile(r"(?<![\w.,-])\d{1,3}(?:,\d{3})+(?:\.\d+)?(?![\w-])|(?<![\w.,-])\d+(?:\.\d+)?(?![\w-])")
_WORD = re.compile(r"[A-Za-z][\w'’&.-]*[\w]|[A-Za-z]")

# Words that open sentences and questions in capitals without naming anything.
_NOT_NAMES = frozenset(
    [
        "a",
        "about",
        "after",
        "all",
        "also",
        "although",
        "an",
        "and",
        "another",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "before",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "during",
        "each",
        "either",
        "even",
        "every",
        "for",
        "from",
        "had",
        "has",
        "have",
        "he",
        "her",
        "his",
        "how",
        "however",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "many",
        "may",
        "more",
        "most",
        "much",
        "my",
        "neither",
        "no",
        "nor",
        "not",
        "of",
        "on",
        "one",
        "or",
        "other",
        "our",
        "over",
        "she",
        "since",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "them",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "though",
        "through",
        "thus",
        "to",
        "under",
        "unlike",
        "until",
        "upon",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "whether",
        "which",
        "while",
        "who",
        "whom",
        "whose",
        "why",
        "will",
        "with",
        "within",
        "without",
        "would",
        "yet",
        "you",
    ]
)
_CONNECTORS = frozenset({"of", "de", "la", "le", "von", "van", "der", "du", "da", "del", "&"})

ANTONYMS: tuple[tuple[str, str], ...] = (
    ("first", "last"),
    ("largest", "smallest"),
    ("biggest", "smallest"),
    ("highest", "lowest"),
    ("most", "least"),
    ("more", "less"),
    ("before", "after"),
    ("earliest", "latest"),
    ("earlier", "later"),
    ("increase", "decrease"),
    ("increased", "decreased"),
    ("north", "south"),
    ("northern", "southern"),
    ("east", "west"),
    ("eastern", "western"),
    ("win", "lose"),
    ("won", "lost"),
    ("maximum", "minimum"),
    ("longest", "shortest"),
    ("oldest", "youngest"),
    ("major", "minor"),
    ("inside", "outside"),
    ("above", "below"),
    ("upper", "lower"),
    ("started", "ended"),
    ("positive", "negative"),
    ("strong", "weak"),
    ("private", "public"),
    ("ancient", "modern"),
    ("internal", "external"),
    ("success", "failure"),
    ("successful", "unsuccessful"),
    ("accepted", "rejected"),
    ("enabled", "disabled"),
    ("true", "false"),
    ("same", "different"),
    ("inner", "outer"),
    ("best", "worst"),
    ("better", "worse"),
    ("top", "bottom"),
    ("high", "low"),
    ("large", "small"),
    ("fast", "slow"),
    ("import", "export"),
    ("imports", "exports"),
    ("rise", "fall"),
    ("gain", "loss"),
    ("add", "remove"),
    ("include", "exclude"),
    ("buy", "sell"),
    ("bought", "sold"),
    ("legal", "illegal"),
    ("hot", "cold"),
    ("wet", "dry"),
    ("rich", "poor"),
)
"""Antonym pairs (both directions); a small built-in list, no lexicon needed. Words whose other senses
dominate questions are left out (`how long`, `end zone`, `allowed` as a verb)."""
_ANTONYM_OF: dict[str, str] = {}
for _a, _b in ANTONYMS:
    _ANTONYM_OF.setdefault(_a, _b)
    _ANTONYM_OF.setdefault(_b, _a)

NEGATED_AUX = {
    "is": "isn't",
    "are": "aren't",
    "was": "wasn't",
    "were": "weren't",
    "do": "don't",
    "does": "doesn't",
    "did": "didn't",
    "has": "hasn't",
    "have": "haven't",
    "had": "hadn't",
    "can": "can't",
    "could": "couldn't",
    "will": "won't",
    "would": "wouldn't",
    "should": "shouldn't",
    "must": "mustn't",
}
"""Auxiliaries and their negated forms: the negation is put on the auxiliary, which stays grammatical
wherever the subject follows it ("When did X start" -> "When didn't X start")."""
_NEGATION = re.compile(r"\b(?:not|no|never|none|nor|nobody|nothing|neither|without)\b|n't\b|n’t\b", re.I)


@dataclass(frozen=True)
class Value:
    """A value found in a text: its kind (`entity`, `number`, `date`) and where it lies."""

    kind: str
    text: str
    start: int
    end: int


@dataclass(frozen=True)
class Swap:
    """One generated question: the kind of change, what was replaced by what, and the new question."""

    kind: str
    question: str
    original: str
    replacement: str


def normalize(text: str) -> str:
    """Case-folded, curly quotes straightened, thousands separators dropped, whitespace collapsed."""
    text = text.casefold().replace("’", "'")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)
    return " ".join(text.split())


def occurs(value: str, text: str) -> bool:
    """Whether `value` occurs in `text` as whole words (see `normalize`)."""
    needle = normalize(value)
    if not needle:
        return False
    return re.search(r"(?<![\w])" + re.escape(needle) + r"(?![\w])", normalize(text)) is not None


def dates(text: str) -> list[Value]:
    return [Value("date", m.group(), m.start(), m.end()) for m in _DATE.finditer(text)]


def numbers(text: str) -> list[Value]:
    """Numbers in digits that are not part of a date."""
    taken = [(d.start, d.end) for d in dates(text)]
    return [
        Value("number", m.group(), m.start(), m.end())
        for m in _NUMBER.finditer(text)
        if not any(s <= m.start() < e for s, e in taken)
    ]


def entities(
    text: str, lowercase_words: frozenset[str] = frozenset(), *, initial: bool = True
) -> list[Value]:
    """Runs of capitalised words (joined by `of`, `de`, ... and digits after a name: `Super Bowl 50`),
    leading function words dropped; a single word is kept only when it is not among
    `lowercase_words` (the words the article also writes in lower case) and, without `initial`, not at
    the start of a sentence (where any word is capitalised). Runs holding a month are dates."""
    words = list(_WORD.finditer(text))
    found: list[Value] = []
    i = 0
    while i < len(words):
        if not words[i].group()[0].isupper():
            i += 1
            continue
        j = i
        while j + 1 < len(words):
            gap = text[words[j].end() : words[j + 1].start()]
            nxt = words[j + 1].group()
            if gap.strip():  # punctuation breaks a name
                break
            if nxt[0].isupper():
                j += 1
            elif nxt.lower() in _CONNECTORS and j + 2 < len(words) and words[j + 2].group()[0].isupper():
                j += 2
            else:
                break
        run = words[i : j + 1]
        while run and run[0].group().lower() in _NOT_NAMES | _CONNECTORS:
            run = run[1:]
        while run and run[-1].group().lower() in _CONNECTORS:
            run = run[:-1]
        if run and not any(w.group().rstrip("'’s") in MONTHS for w in run):  # dates are not names
            start, end = run[0].start(), run[-1].end()
            if text[end - 2 : end] in ("'s", "’s"):  # the possessive is not part of the name
                end -= 2
            tail = re.match(r"\s+\d{1,3}\b", text[end:])
            if tail and text[end - 1].isalpha():
                end += tail.end()
            value = text[start:end]
            single = len(run) == 1 and not tail
            opens = not text[:start].strip() or text[:start].rstrip()[-1] in ".!?\"'“:;"
            if not (single and (value.lower() in lowercase_words or (opens and not initial))):
                found.append(Value("entity", value, start, end))
        i = j + 1
    return found


def lowercase_words(texts: Iterable[str]) -> frozenset[str]:
    """Words the texts write in lower case somewhere: such a word in capitals is not a name."""
    return frozenset(w for t in texts for w in re.findall(r"\b[a-z][a-z'-]*\b", t))


def values(text: str, kind: str, lower: frozenset[str] = frozenset(), *, initial: bool = True) -> list[Value]:
    if kind == "date":
        return dates(text)
    if kind == "number":
        return numbers(text)
    if kind == "entity":
        return entities(text, lower, initial=initial)
    raise ValueError(f"not a value kind: {kind}")


def value_pool(texts: Sequence[str], kind: str) -> list[str]:
    """The distinct values of one kind in an article's texts, in order of first appearance (a
    one-word name only where it is not at the start of a sentence)."""
    lower = lowercase_words(texts)
    seen: dict[str, str] = {}
    for text in texts:
        for value in values(text, kind, lower, initial=False):
            seen.setdefault(normalize(value.text), value.text)
    return list(seen.values())


def shape(value: Value | str, kind: str, article: str = "") -> str:
    """What a replacement must share with the value it replaces: for a number, its digit count and
    separators (`12` -> `dd`, `0.3` -> `0.d`, `01` -> `0d`); for a date, its form with months as `M`
    and digit runs as `d` (`June 4, 1998` -> `M d, d`); for a name, its number of words, whether it
    is an acronym and (given the article's text) whether the article mostly writes `the` before it
    (`the Panthers`, `the European Union`: teams, bodies, places; not people), so that a name is
    swapped for a like one."""
    text = value.text if isinstance(value, Value) else value
    if kind == "number":  # a leading zero (`01`, `007`) is kept as it is: a code, not a count
        return re.sub(r"[1-9]", "d", re.sub(r"(?<=[1-9])0|(?<=[.,])0|(?<=\d)0", "d", text))
    if kind == "date":
        return re.sub(r"\d+", "d", re.sub(_MONTH, "M", text))
    return _name_shape(text, article)


@functools.lru_cache(maxsize=100_000)
def _name_shape(name: str, article: str) -> str:
    words = name.split()
    acronym = len(name) > 1 and name.replace(" ", "").replace("&", "").isupper()
    shape = f"{len(words)}{'A' if acronym else ''}"
    if article:
        mentions = re.findall(r"(\w+)\s+" + re.escape(name) + r"(?!\w)", article)
        if mentions and 2 * sum(m.lower() == "the" for m in mentions) >= len(mentions):
            shape += "T"
    return shape


def swap_value(
    question: str,
    kind: str,
    gold: str,
    pool: Sequence[str],
    answers: Sequence[str],
    rng: random.Random,
    lower: frozenset[str] = frozenset(),
    article: str = "",
) -> Swap | None:
    """The question with one of its values of `kind` replaced by a value of the same kind and shape
    (see `shape`) from `pool` that the gold paragraph does not contain, that neither contains nor
    is contained in a gold answer and (a name) shares no word with the name it replaces; None when
    no value of the question occurs in the gold paragraph or no replacement passes the check."""
    found = [v for v in values(question, kind, lower) if occurs(v.text, gold)]
    if not found:
        return None
    target = rng.choice(found)
    wanted = shape(target, kind, article)
    words = set(normalize(target.text).split())
    candidates = [
        p
        for p in pool
        if shape(p, kind, article) == wanted
        and normalize(p) != normalize(target.text)
        and (kind != "entity" or not words & set(normalize(p).split()))  # Genghis Khan, Chinggis Khan
    ]
    for replacement in rng.sample(candidates, len(candidates)):
        if occurs(replacement, gold) or occurs(replacement, question):
            continue
        if any(occurs(replacement, a) or occurs(a, replacement) for a in answers):
            continue
        text = question[: target.start] + replacement + question[target.end :]
        return Swap(kind, text, target.text, replacement)
    return None


def _cased_like(word: str, model: str) -> str:
    if model.isupper() and len(model) > 1:
        return word.upper()
    return word[0].upper() + word[1:] if model[0].isupper() else word


def swap_antonym(question: str, gold: str, rng: random.Random) -> Swap | None:
    """The question with one word from the antonym list replaced by its antonym, which the gold
    paragraph must not contain; None when no word qualifies."""
    found = [
        m
        for m in re.finditer(r"\b[A-Za-z]+\b", question)
        if m.group().lower() in _ANTONYM_OF and not occurs(_ANTONYM_OF[m.group().lower()], gold)
    ]
    if not found:
        return None
    target = rng.choice(found)
    replacement = _cased_like(_ANTONYM_OF[target.group().lower()], target.group())
    return Swap(
        "antonym",
        question[: target.start()] + replacement + question[target.end() :],
        target.group(),
        replacement,
    )


def sentences(text: str) -> list[str]:
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z0-9\"'(])", text) if s.strip()]


def insert_negation(question: str, gold: str, answers: Sequence[str]) -> Swap | None:
    """The question with its first auxiliary negated; None when the question is already negated,
    has no auxiliary, or a sentence of the gold paragraph holding a gold answer is itself negated
    (then the negated question might be what the paragraph answers)."""
    if _NEGATION.search(question):
        return None
    aux = re.search(r"\b(" + "|".join(NEGATED_AUX) + r")\b", question, re.I)
    if aux is None:
        return None
    answer_sentences = [s for s in sentences(gold) if any(occurs(a, s) for a in answers)]
    if any(_NEGATION.search(s) for s in answer_sentences):
        return None
    word = aux.group()
    negated = _cased_like(NEGATED_AUX[word.lower()], word)
    return Swap("negation", question[: aux.start()] + negated + question[aux.end() :], word, negated)


def generate(
    question: str,
    gold: str,
    answers: Sequence[str],
    article: Sequence[str],
    rng: random.Random,
    kinds: Sequence[str] = KINDS,
    lower: frozenset[str] | None = None,
    pools: dict[str, list[str]] | None = None,
    article_text: str | None = None,
) -> list[Swap]:
    """Every swap of `kinds` that applies to the question (at most one per kind). `article` are the
    texts of the question's article (the pool of replacement values); `pools`, `lower` and
    `article_text` (the texts joined) may be passed precomputed for it."""
    lower = lowercase_words(article) if lower is None else lower
    text = article_text if article_text is not None else "\n\n".join(article)
    swaps: list[Swap] = []
    for kind in kinds:
        if kind in VALUE_KINDS:
            pool = pools[kind] if pools is not None else value_pool(article, kind)
            swap = swap_value(question, kind, gold, pool, answers, rng, lower, text)
        elif kind == "antonym":
            swap = swap_antonym(question, gold, rng)
        elif kind == "negation":
            swap = insert_negation(question, gold, answers)
        else:
            raise ValueError(f"unknown swap kind {kind!r}; known: {', '.join(KINDS)}")
        if swap is not None and normalize(swap.question) != normalize(question):
            swaps.append(swap)
    return swaps


def question_rng(seed: int, question_id: str) -> random.Random:
    """The generator of one question's choices: seeded by the seed and the id alone (string seeds are
    hashed with SHA-512 by `random`, independently of PYTHONHASHSEED), so output does not depend on
    the order or number of questions processed."""
    return random.Random(f"{seed}:{question_id}")


def unanswerable_squad(
    data: Sequence[dict],
    *,
    seed: int = 0,
    kinds: Sequence[str] = KINDS,
    max_per_question: int | None = None,
    prefix: str = "",
) -> tuple[list[dict], dict[str, int]]:
    """SQuAD 2.0 articles from SQuAD 1.1-style `data`: every original question kept answerable
    (`is_impossible` false) and after it the questions generated from it (`is_impossible` true, no
    answers, the original answers as `plausible_answers`, and a `swap` record of the change), at most
    `max_per_question` of them (a seeded choice) when given. Returns the articles and the count per
    kind (and of originals)."""
    counts = {"original": 0, **{kind: 0 for kind in kinds}}
    articles = []
    for article in data:
        texts = [p["context"] for p in article["paragraphs"]]
        joined = "\n\n".join(texts)
        lower = lowercase_words(texts)
        pools = {kind: value_pool(texts, kind) for kind in kinds if kind in VALUE_KINDS}
        paragraphs = []
        for paragraph in article["paragraphs"]:
            qas = []
            for qa in paragraph["qas"]:
                if qa.get("is_impossible"):
                    continue
                answers = [a["text"] for a in qa["answers"]]
                qas.append({**qa, "is_impossible": False})
                counts["original"] += 1
                rng = question_rng(seed, qa["id"])
                swaps = generate(
                    qa["question"], paragraph["context"], answers, texts, rng, kinds, lower, pools, joined
                )
                if max_per_question is not None and len(swaps) > max_per_question:
                    swaps = sorted(rng.sample(swaps, max_per_question), key=lambda s: kinds.index(s.kind))
                for swap in swaps:
                    counts[swap.kind] += 1
                    qas.append(
                        {
                            "id": f"{prefix}{qa['id']}-{swap.kind}",
                            "question": swap.question,
                            "answers": [],
                            "is_impossible": True,
                            "plausible_answers": qa["answers"],
                            "swap": {
                                "kind": swap.kind,
                                "from": swap.original,
                                "to": swap.replacement,
                                "original_id": qa["id"],
                                "original_question": qa["question"],
                            },
                        }
                    )
            paragraphs.append({"context": paragraph["context"], "qas": qas})
        articles.append({"title": article["title"], "paragraphs": paragraphs})
    return articles, counts


def document_paragraphs(text: str, min_chars: int = 80) -> list[str]:
    """A document's text as paragraphs: blocks between blank lines, a block shorter than `min_chars`
    (a heading) joined to the next one."""
    paragraphs: list[str] = []
    pending = ""
    for block in (b.strip() for b in re.split(r"\n\s*\n", text)):
        if not block:
            continue
        pending = f"{pending}\n\n{block}" if pending else block
        if len(pending) >= min_chars:
            paragraphs.append(pending)
            pending = ""
    if pending:
        if paragraphs:
            paragraphs[-1] = f"{paragraphs[-1]}\n\n{pending}"
        else:
            paragraphs.append(pending)
    return paragraphs


def squad_from_documents(
    documents: dict[str, str], questions: Iterable[tuple[str, str, str, list[str]]]
) -> list[dict]:
    """SQuAD 1.1-style articles, one per document ({name: text}), its paragraphs those of
    `document_paragraphs`; each question (id, question, source document name, answers) is put under the
    first paragraph of its source that holds one of its answers (skipped when none does), with the
    answers found there."""
    articles = {
        name: [{"context": p, "qas": []} for p in document_paragraphs(text)]
        for name, text in documents.items()
    }
    for qid, question, source, answers in questions:
        for paragraph in articles.get(source, []):
            found = [
                {"text": paragraph["context"][m.start() : m.end()], "answer_start": m.start()}
                for a in answers
                if (m := re.search(re.escape(a), paragraph["context"], re.I))
            ]
            if found:
                paragraph["qas"].append({"id": qid, "question": question, "answers": found})
                break
    return [{"title": name, "paragraphs": paragraphs} for name, paragraphs in articles.items()]
