"""Scoring stored answer records per benchmark mode, deciding every answer through `GroundingPolicy`.

Modes: `generative` (the model's answer as written; flag mode writes the same text), `strict`
(unsupported sentences removed, abstaining when none remain) and `extractive` (no language model).
The evidence gate and refusal threshold are applied here, after the fact, so calibration can choose
them from the same records.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from dataclasses import replace
from typing import Any

from rag.config import Settings
from rag.evaluation.records import AnswerRecord, QuestionRecord
from rag.metrics import percentile
from rag.policy import GroundingPolicy
from rag.text import strip_citations

MODES = ("generative", "strict", "extractive")
QUALITY_METRICS = (
    "f1",
    "exact_match",
    "answered_rate",
    "abstain_rate_unanswerable",
    "citation_recall",
    "citation_precision",
    "gold_cited_rate",
)
"""The per-mode quality figures (percent), in the order reports show them."""


# SQuAD's official normalization and scores.
def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: list[str] | tuple[str, ...]) -> float:
    return float(max(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: list[str] | tuple[str, ...]) -> float:
    def f1(gold: str) -> float:
        predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
        common = sum((Counter(predicted) & Counter(wanted)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(predicted), common / len(wanted)
        return 2 * precision * recall / (precision + recall)

    return max(f1(g) for g in golds)


def mode_policy(mode: str, gate: float, threshold: float, refusal: float = 1.0) -> GroundingPolicy:
    """The product's grounding policy as a benchmark mode runs it (extractive answers flag, never strip)."""
    return GroundingPolicy(
        mode="strict" if mode == "strict" else "flag",
        min_relevance=gate,
        refusal_threshold=refusal,
        support_threshold=threshold,
    )


def mode_answer(
    record: QuestionRecord, mode: str, gate: float, threshold: float, refusal: float = 1.0
) -> AnswerRecord:
    """The answer a mode gives for one record under the gate, support and refusal thresholds."""
    policy = mode_policy(mode, gate, threshold, refusal)
    source = record.extractive if mode == "extractive" else record.generative
    if source is None:
        raise ValueError(f"record {record.id} has no generative answer to score in mode {mode}")
    refused = mode != "extractive" and policy.refusal_abstains(source.refusal)
    abstained = AnswerRecord("", True, (), source.seconds, source.refusal)
    if policy.gate_abstains(record.evidence) or source.abstained or refused:
        return abstained
    kept = policy.kept(source.sentences)
    if kept is None:
        return abstained
    if mode == "strict":
        return replace(source, text=" ".join(s.text for s in kept), sentences=tuple(kept))
    return source


def score_mode(
    records: list[QuestionRecord], mode: str, gate: float, threshold: float, refusal: float = 1.0
) -> dict[str, float]:
    """EM/F1, answered and abstain rates, ALCE-style citation recall/precision, gold citation, latency.

    `gate` is the evidence gate, `threshold` the support threshold and `refusal` the refusal-probability
    threshold (1: off) they are scored under."""
    policy = mode_policy(mode, gate, threshold, refusal)
    answerable = [r for r in records if r.answerable]
    unanswerable = [r for r in records if not r.answerable]
    views = {r.id: mode_answer(r, mode, gate, threshold, refusal) for r in records}
    answered = [r for r in answerable if not views[r.id].abstained]
    em = [exact_match(strip_citations(views[r.id].text), r.answers) for r in answered]
    f1 = [token_f1(strip_citations(views[r.id].text), r.answers) for r in answered]
    recalled = total_sentences = precise = total_citations = 0
    for view in views.values():
        for s in view.sentences:
            total_sentences += 1
            supported = policy.is_supported(s)
            recalled += supported
            total_citations += len(s.citations) + len(s.invalid_citations)
            if supported and len(s.citations) == 1:
                precise += 1
            elif supported:
                precise += sum(
                    a >= threshold or w < threshold for a, w in zip(s.alone, s.without, strict=True)
                )
    gold_cited = [any(r.gold in s.citations for s in views[r.id].sentences) for r in answered]
    seconds = [v.seconds for v in views.values()]

    def share(values: list[float]) -> float:
        return 100.0 * sum(values) / len(values) if values else 0.0

    return {
        "questions": float(len(records)),
        "answerable": float(len(answerable)),
        "unanswerable": float(len(unanswerable)),
        "exact_match": share(em),
        "f1": share(f1),
        "answered_rate": 100.0 * len(answered) / max(len(answerable), 1),
        "abstain_rate_unanswerable": share([float(views[r.id].abstained) for r in unanswerable]),
        "citation_recall": 100.0 * recalled / max(total_sentences, 1),
        "citation_precision": 100.0 * precise / max(total_citations, 1),
        "gold_cited_rate": share([float(g) for g in gold_cited]),
        "latency_s_mean": sum(seconds) / max(len(seconds), 1),
        "latency_s_p50": percentile(seconds, 50),
        "latency_s_p95": percentile(seconds, 95),
    }


def score_records(
    records: list[QuestionRecord], modes: tuple[str, ...], gate: float, threshold: float, refusal: float = 1.0
) -> dict[str, Any]:
    """Every mode's figures (rounded) under one gate, support and refusal threshold."""
    return {
        "gate": gate,
        "support_threshold": threshold,
        "refusal_threshold": refusal,
        "modes": {
            m: {k: round(v, 4) for k, v in score_mode(records, m, gate, threshold, refusal).items()}
            for m in modes
        },
    }


def results_for(
    records: list[QuestionRecord],
    settings: Settings,
    modes: tuple[str, ...],
    meta: dict[str, Any],
    checker: str,
) -> dict[str, Any]:
    """Scores of `records` under the settings' gate and support threshold, with what produced them."""
    results = score_records(
        records, modes, settings.min_relevance, settings.support_threshold, settings.refusal_threshold
    )
    results.update(
        **meta,
        settings={
            name: getattr(settings, name)
            for name in (
                "top_k",
                "retrieval_mode",
                "answer_style",
                "min_relevance",
                "support_threshold",
                "refusal_threshold",
                "generator",
                "support_model",
            )
        },
        support_checker=checker,
    )
    return results
