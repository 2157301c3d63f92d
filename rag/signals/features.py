"""The confidence signals of one answer: a small feature vector read from work already done.

Every feature is computed from what answering produced anyway (the retrieved passages and their scores,
the model's refusal probability, its token log-probabilities, the checked sentences) plus two cheap
reads: the judge's Yes/No logits continued from the answer's own prompt (`judge_logit`) and the
extractive mode's best sentence. `rag/signals/calibrator.py` turns the vector into one probability.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from rag.generation import ContinuationScorer
from rag.support.claims import claim_values, ungrounded_values
from rag.text import content_terms, split_sentences, strip_citations
from rag.types import AnswerSentence, Passage

FEATURES: tuple[str, ...] = (
    "dense_top",
    "dense_margin",
    "fused_top",
    "top_is_dense_best",
    "question_terms_in_top",
    "refusal_log",
    "answer_logprob_mean",
    "answer_logprob_min",
    "answer_tokens_log",
    "support_min",
    "support_mean",
    "claim_flags",
    "uncited_share",
    "cites_top",
    "coverage",
    "question_values_missing",
    "answer_in_cited",
    "answer_in_best_sentence",
    "judge_logit",
    "extractive_agreement",
    "extractive_coverage",
    "model_refused",
    "hidden_probe",
)
"""The feature names, in the order the calibrator reads them (`calibrator.json` stores its own list)."""

JUDGE_QUESTION = (
    "Check your reply. Do the numbered sources above state the answer to the question, exactly as you "
    "gave it? Reply Yes or No."
)
"""Asked after the answer, in the same conversation: the prompt and the answer are already in the
model's cache, so the judgement costs the prefill of this turn and two one-token reads."""

REFUSAL_FLOOR = 1e-6
"""Refusal probabilities are read on a log scale; this keeps log(0) finite."""


@dataclass
class AnswerEvidence:
    """What one answer's signals are read from (every field is produced by answering anyway)."""

    question: str
    passages: Sequence[Passage]
    text: str
    sentences: Sequence[AnswerSentence] = ()
    refusal: float | None = None
    token_logprobs: Sequence[float] = ()
    judge_logit: float | None = None
    extractive: str = ""
    refused: bool = False
    extra: dict[str, float] = field(default_factory=dict)


def judge_logit(
    scorer: ContinuationScorer, messages: list[dict[str, str]], answer: str, question: str = JUDGE_QUESTION
) -> float:
    """logit(Yes) - logit(No) of the model asked, right after its `answer` to `messages`, whether the
    sources state that answer (the graded judge: > 0 leans Yes). Log-probabilities share one normaliser,
    so their difference is the logit difference."""
    turn = [*messages, {"role": "assistant", "content": answer}, {"role": "user", "content": question}]
    yes = scorer.continuation_logprob(turn, "Yes", 1)
    no = scorer.continuation_logprob(turn, "No", 1)
    return float(yes - no)


def _terms(text: str) -> set[str]:
    return set(content_terms(strip_citations(text)))


def _share(part: set[str], whole: set[str]) -> float:
    return len(part & whole) / len(part) if part else 1.0


def best_supporting_sentence(question: str, answer: str, texts: Sequence[str]) -> str:
    """The sentence of `texts` sharing most content words with the question and the answer together."""
    wanted = _terms(question) | _terms(answer)
    best, best_overlap = "", -1
    for text in texts:
        for sentence in split_sentences(" ".join(text.split())):
            overlap = len(wanted & _terms(sentence))
            if overlap > best_overlap:
                best, best_overlap = sentence, overlap
    return best


def retrieval_features(passages: Sequence[Passage], question: str) -> dict[str, float]:
    """Best cosine and its margin over the second, the top fused score (reciprocal rank fusion: highest
    when both rankings put the passage first), whether the fused top is also the best cosine (the two
    rankings agree), and the share of the question's content words in the top passage (lexical match)."""
    if not passages:
        return {name: 0.0 for name in FEATURES[:5]}
    cosines = sorted((p.relevance for p in passages), reverse=True)
    top = passages[0]
    return {
        "dense_top": cosines[0],
        "dense_margin": cosines[0] - cosines[1] if len(cosines) > 1 else cosines[0],
        "fused_top": float(top.score),
        "top_is_dense_best": float(top.relevance >= cosines[0]),
        "question_terms_in_top": _share(_terms(question), _terms(top.chunk.text)),
    }


def answer_signals(evidence: AnswerEvidence) -> dict[str, float]:
    """The feature vector (`FEATURES`) of one answer; a read that was not made (no refusal probability,
    token log-probabilities or judge: extractive answers, backends that cannot score) is NaN, which the
    calibrator reads as the development mean."""
    passages = list(evidence.passages)
    features = retrieval_features(passages, evidence.question)
    refusal = evidence.refusal
    features["refusal_log"] = math.log(max(refusal, REFUSAL_FLOOR)) if refusal is not None else math.nan
    logprobs = list(evidence.token_logprobs)
    features["answer_logprob_mean"] = sum(logprobs) / len(logprobs) if logprobs else math.nan
    features["answer_logprob_min"] = min(logprobs) if logprobs else math.nan
    features["answer_tokens_log"] = math.log1p(len(logprobs)) if logprobs else math.nan
    sentences = list(evidence.sentences)
    supports = [s.support for s in sentences if s.support is not None]
    features["support_min"] = min(supports) if supports else 0.0
    features["support_mean"] = sum(supports) / len(supports) if supports else 0.0
    features["claim_flags"] = float(sum(bool(s.issues) for s in sentences))
    features["uncited_share"] = sum(not s.citations for s in sentences) / len(sentences) if sentences else 1.0
    cited = sorted({n for s in sentences for n in s.citations if 1 <= n <= len(passages)})
    features["cites_top"] = float(1 in cited)
    texts = [passages[n - 1].chunk.text for n in cited] or [p.chunk.text for p in passages[:1]]
    features.update(constraint_features(evidence.question, evidence.text, texts))
    features["judge_logit"] = evidence.judge_logit if evidence.judge_logit is not None else math.nan
    answer_terms = _terms(evidence.text)
    features["extractive_agreement"] = (
        _share(answer_terms, _terms(evidence.extractive)) if evidence.extractive else 0.0
    )
    features["extractive_coverage"] = (
        _share(_terms(evidence.question), _terms(evidence.extractive)) if evidence.extractive else 0.0
    )
    features["model_refused"] = float(evidence.refused)
    features.update(evidence.extra)
    return {name: float(features.get(name, 0.0)) for name in FEATURES}


def constraint_features(question: str, answer: str, texts: Sequence[str]) -> dict[str, float]:
    """Constraint coverage: the share of the question's content words in the best supporting sentence of
    the cited passages; how many of the question's values (numbers, dates, names) no cited passage states
    (an entity or number swapped into the question); the share of the answer's words the cited passages
    state, and the share the best supporting sentence states (an answer from memory states neither)."""
    sentence = best_supporting_sentence(question, answer, texts)
    question_terms, answer_terms = _terms(question), _terms(answer)
    cited_terms = set().union(*(_terms(t) for t in texts)) if texts else set()
    values = claim_values(question)
    missing = ungrounded_values(question, list(texts)) if values else []
    return {
        "coverage": _share(question_terms, _terms(sentence)),
        "question_values_missing": float(len(missing)),
        "answer_in_cited": _share(answer_terms, cited_terms),
        "answer_in_best_sentence": _share(answer_terms - question_terms, _terms(sentence)),
    }
