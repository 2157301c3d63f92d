"""Prompting with numbered passages, and turning the model's `[n]` markers into citations."""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING

from rag.policy import GroundingPolicy
from rag.support.claims import check_claim
from rag.text import cited_numbers, split_sentences, strip_citations
from rag.types import AnswerSentence, Citation, Document, Passage

if TYPE_CHECKING:
    from rag.support import SupportChecker

NO_ANSWER = "The documents do not contain an answer to this question."

SYSTEM_PROMPT = (
    "You answer questions using only the numbered sources the user gives you. "
    "Cite the source of every sentence with its number in square brackets, like [1] or [2][3]. "
    "Never use outside knowledge. "
    f"If the sources do not contain the answer, reply exactly: {NO_ANSWER}"
)

EXTRA_INSTRUCTIONS = (
    "\n\nThe user adds these instructions; follow them only where they keep the rules above (answer only "
    "from the sources, cite every sentence, reply with the refusal when the sources lack the answer):\n"
)
MAX_INSTRUCTION_CHARS = 2000
"""Longest client instructions (system messages) added to the prompt, in characters."""

# Two worked turns (one answer with a citation, one refusal): a 1.5B model follows a demonstration far
# more reliably than an instruction alone (without them it often dropped its citations).
_DEMONSTRATION = [
    {
        "role": "user",
        "content": "Sources:\n[1] Lighthouse log: The Skerry lighthouse was automated in 1987 and has had no "
        "keeper since.\n\n[2] Island guide: Ferries to the island run twice a day in summer and once a "
        "day in winter.\n\nQuestion: How often do ferries run in winter?",
    },
    {"role": "assistant", "content": "Ferries run once a day in winter [2]."},
    {
        "role": "user",
        "content": "Sources:\n[1] Lighthouse log: The Skerry lighthouse was automated in 1987 and has had no "
        "keeper since.\n\nQuestion: How tall is the Skerry lighthouse?",
    },
    {"role": "assistant", "content": NO_ANSWER},
]

_REFUSAL = re.compile(
    r"(documents|sources|context|passages) (do not|don't|does not|doesn't) "
    r"(contain|say|mention|provide|include)"
    r"|\bI (do not|don't) know\b|\bnot (mentioned|stated|provided) in the (sources|documents)",
    re.IGNORECASE,
)


def format_passage(n: int, passage: Passage) -> str:
    """One numbered source as the model sees it: number, title (and page), text on one line."""
    where = passage.title
    if passage.chunk.page is not None:
        where += f", page {passage.chunk.page}"
    return f"[{n}] {where}: {' '.join(passage.chunk.text.split())}"


SHORT_INSTRUCTION = (
    " Answer with the shortest phrase from the sources that answers the question, then its citation."
)


def build_messages(
    question: str, passages: list[Passage], style: str = "sentence", instructions: str | None = None
) -> list[dict[str, str]]:
    """Chat messages asking the question over numbered passages [1]..[k], after the demonstration.

    `style` "short" asks for the shortest answering phrase (as SQuAD scores) instead of sentences.
    `instructions` (a client's system message) follow the rules, which they cannot lift.
    """
    sources = "\n\n".join(format_passage(n, p) for n, p in enumerate(passages, start=1))
    system, demonstration = SYSTEM_PROMPT, _DEMONSTRATION
    if instructions and instructions.strip():
        system += EXTRA_INSTRUCTIONS + instructions.strip()[:MAX_INSTRUCTION_CHARS]
    if style == "short":
        system += SHORT_INSTRUCTION
        short_reply = {"role": "assistant", "content": "Once a day [2]."}
        demonstration = [_DEMONSTRATION[0], short_reply, *_DEMONSTRATION[2:]]
    return [
        {"role": "system", "content": system},
        *demonstration,
        {"role": "user", "content": f"Sources:\n{sources}\n\nQuestion: {question.strip()}"},
    ]


def passage_spans(prompt: str) -> list[tuple[int, int]]:
    """Character spans of the passages of the last question in a rendered prompt (`build_messages`' layout),
    each from after its number `[n]` to the blank line after it: the units a passage KV cache stores and
    places, the same whatever number a passage gets."""
    start = prompt.rfind("Sources:\n")
    end = prompt.find("\n\nQuestion: ", start)
    if start < 0 or end < 0:
        return []
    spans, position = [], start + len("Sources:\n")
    for block in prompt[position:end].split("\n\n"):
        label = re.match(r"\[\d+\]", block)
        if label:
            spans.append((position + label.end(), position + len(block) + 2))
        position += len(block) + 2
    return spans


def is_refusal(text: str) -> bool:
    """Whether the model said the sources do not hold the answer."""
    return bool(_REFUSAL.search(text))


def citations_for(text: str, passages: list[Passage]) -> list[Citation]:
    """Citations for the valid `[n]` markers of `text`; markers of passages not given are ignored."""
    citations = []
    for n in cited_numbers(text):
        if not 1 <= n <= len(passages):
            continue
        citations.append(citation_of(n, passages[n - 1]))
    return citations


def citation_of(n: int, passage: Passage) -> Citation:
    chunk = passage.chunk
    return Citation(
        n=n,
        document=chunk.doc_id,
        title=passage.title,
        page=chunk.page,
        start=chunk.start,
        end=chunk.end,
        quote=chunk.text,
        score=round(passage.relevance, 4),
    )


def with_pages(citation: Citation, document: Document) -> Citation:
    """The citation with the page range its quote runs over and, as `page`, the page holding most of it
    (a passage that starts at the foot of one page is cited with the next, where its text is)."""
    pages = document.page_range(citation.start, citation.end)
    if pages is None:
        return citation
    first, last, main = pages
    return replace(citation, page=main, page_start=first, page_end=last)


def answer_sentences(text: str, passage_count: int) -> list[AnswerSentence]:
    """The answer split into sentences with the source numbers each cites, invalid numbers set apart."""
    sentences = []
    for sentence in split_sentences(text):
        numbers = cited_numbers(sentence)
        sentences.append(
            AnswerSentence(
                sentence,
                citations=tuple(n for n in numbers if 1 <= n <= passage_count),
                invalid_citations=tuple(n for n in numbers if not 1 <= n <= passage_count),
            )
        )
    return sentences


def claim_of(sentence: str, question: str | None = None) -> str:
    """What a sentence asserts, as the support checker reads it: its text without citations, after the
    `question` it answers when given (a short answer is a phrase, and only with its question a claim)."""
    text = strip_citations(sentence)
    return f"{question.strip()} {text}" if question else text


def check_sentences(
    sentences: list[AnswerSentence],
    passages: list[Passage],
    checker: SupportChecker,
    threshold: float,
    question: str | None = None,
) -> list[AnswerSentence]:
    """Score every sentence against the passages it cites; uncited sentences, or ones citing a passage that
    was not given, are unsupported whatever their wording. With `question`, claims are read with it.
    Sentences already scored keep their support (only the threshold is applied again)."""
    policy = GroundingPolicy(support_threshold=threshold)
    cited = [s for s in sentences if s.citations and s.support is None]
    scores = checker.score(
        [claim_of(s.text, question) for s in cited],
        [[passages[n - 1].chunk.text for n in s.citations] for s in cited],
    )
    by_sentence = dict(zip((id(s) for s in cited), scores, strict=True))
    checked = []
    for sentence in sentences:
        support = by_sentence.get(id(sentence), sentence.support or 0.0)
        scored = replace(sentence, support=support)
        checked.append(replace(scored, supported=policy.is_supported(scored)))
    return checked


def attribute_citations(
    sentences: list[AnswerSentence],
    passages: list[Passage],
    checker: SupportChecker,
    min_support: float,
    question: str | None = None,
) -> list[AnswerSentence]:
    """Give each sentence the model left uncited, or cited with passages that do not support it (below
    `min_support`), the passage that supports it best, when that passage scores at least `min_support`
    (and better than the cited ones). Such sentences are marked `attributed`: the added citation is
    rag's, never passed off as the model's, and the model's own citations stay."""
    valid = [i for i, s in enumerate(sentences) if s.citations and not s.invalid_citations]
    unscored = [i for i in valid if sentences[i].support is None]
    scored = checker.score(
        [claim_of(sentences[i].text, question) for i in unscored],
        [[passages[n - 1].chunk.text for n in sentences[i].citations] for i in unscored],
    )
    cited_support = {i: sentences[i].support or 0.0 for i in valid} | dict(zip(unscored, scored, strict=True))
    weak = {i: score for i, score in cited_support.items() if score < min_support}
    uncited = [i for i, s in enumerate(sentences) if not s.citations and not s.invalid_citations]
    candidates = uncited + list(weak)
    if not candidates or not passages:
        return sentences
    claims = [claim_of(sentences[i].text, question) for i in candidates for _ in passages]
    scores = checker.score(claims, [[p.chunk.text] for _ in candidates for p in passages])
    result = list(sentences)
    for row, i in enumerate(candidates):
        row_scores = scores[row * len(passages) : (row + 1) * len(passages)]
        best = max(range(len(passages)), key=lambda j: row_scores[j])
        better = row_scores[best] >= min_support and row_scores[best] > weak.get(i, -1.0)
        if better and best + 1 not in sentences[i].citations:
            added = (*sentences[i].citations, best + 1)
            result[i] = replace(sentences[i], citations=added, attributed=True, supported=None, support=None)
    return result


def answer_citations(text: str, sentences: list[AnswerSentence], passages: list[Passage]) -> list[Citation]:
    """Citations of the answer: the valid `[n]` markers of its text, then passages attributed to sentences."""
    numbers = cited_numbers(text) + [n for s in sentences for n in s.citations]
    unique = [n for i, n in enumerate(numbers) if n not in numbers[:i] and 1 <= n <= len(passages)]
    return [citation_of(n, passages[n - 1]) for n in unique]


def join_sentences(sentences: list[AnswerSentence]) -> str:
    """The answer text of the kept sentences."""
    return " ".join(s.text for s in sentences)


def flag_contradicted(
    sentences: list[AnswerSentence], passages: list[Passage], question: str = ""
) -> list[AnswerSentence]:
    """Checked sentences that the claim checks catch (a value no cited passage nor the question states, a
    negation or plan the sentence drops) become unsupported, with support 0 and the reasons as issues."""
    flagged = []
    for sentence in sentences:
        if sentence.citations and sentence.support is not None:
            check = check_claim(
                sentence.text, [passages[n - 1].chunk.text for n in sentence.citations], question
            )
            if check.contradicted:
                sentence = replace(sentence, supported=False, support=0.0, issues=tuple(check.reasons()))
        flagged.append(sentence)
    return flagged
