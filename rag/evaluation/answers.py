"""The answer benchmark: SQuAD questions over their articles' paragraphs, answered end to end by rag.

Each paragraph is a document and the gold paragraph is the citation target. One generation per
question serves every mode (see `scoring`): each question is answered once by the language model
(support scored, gate and refusal threshold off) and once extractively, and the records are scored
after the fact, so `rag eval calibrate` can choose thresholds from the same records.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.evaluation.datasets import SquadQuestion, load_squad
from rag.evaluation.records import AnswerRecord, QuestionRecord, SentenceRecord, read_records, write_records
from rag.evaluation.retrieval import build_index
from rag.evaluation.scoring import MODES, results_for
from rag.grounding import claim_of
from rag.parsers.jsonl import corpus_id
from rag.retrieval import evidence_score
from rag.support import SupportChecker
from rag.types import Answer

if TYPE_CHECKING:
    from rag.assistant import Assistant


def answer_record(answer: Answer, checker: SupportChecker, context: str | None = None) -> AnswerRecord:
    """What scoring needs from one answer: text, abstention, sentences with their support, and the
    support of every citation alone and of the others without it (ALCE's precision test); claims are
    read with the question `context` as the answer was checked (see `claim_of`)."""
    passages = answer.passages
    sentences = []
    for s in answer.sentences:
        texts = {n: passages[n - 1].chunk.text for n in s.citations}
        alone, without = _precision_scores(claim_of(s.text, context), texts, checker)
        sentences.append(
            SentenceRecord(
                s.text,
                tuple(corpus_id(passages[n - 1].chunk.doc_id, passages[n - 1].source) for n in s.citations),
                tuple(s.invalid_citations),
                s.support,
                tuple(alone),
                tuple(without),
            )
        )
    return AnswerRecord(
        answer.text,
        answer.abstained,
        tuple(sentences),
        answer.timings.get("total_seconds", 0.0),
        answer.refusal_probability,
        _signals_with_costs(answer),
        answer.confidence,
        answer.recovered,
        tuple(answer.hidden_state) if answer.hidden_state else None,
    )


COST_TIMINGS = ("refusal_check_seconds", "judge_seconds", "confidence_seconds", "support_seconds")
"""Timings stored beside the signals (`seconds_*`, not features) to cost them per question."""


def _signals_with_costs(answer: Answer) -> dict[str, float] | None:
    if not answer.signals:
        return None
    signals = {k: round(v, 5) for k, v in answer.signals.items()}
    signals.update({f"seconds_{k}": round(answer.timings[k], 4) for k in COST_TIMINGS if k in answer.timings})
    return signals


def _precision_scores(
    claim: str, texts: dict[Any, str], checker: SupportChecker
) -> tuple[list[float], list[float]]:
    """Support of the claim by each cited text alone, and by the others without it (two or more cited)."""
    if len(texts) < 2:
        return [], []
    alone = checker.score([claim] * len(texts), [[t] for t in texts.values()])
    without = checker.score([claim] * len(texts), [[t for d, t in texts.items() if d != n] for n in texts])
    return alone, without


def resupport(
    records: list[QuestionRecord],
    corpus: dict[str, tuple[str, str]],
    checker: SupportChecker,
    *,
    short_answers: bool,
    progress: Callable[[str], None] = lambda _m: None,
) -> list[QuestionRecord]:
    """The records with the generative answer's sentences scored again by `checker` against the paragraphs
    they cite: checkers compared on the very same answers, without generating again (extractive answers
    keep their scores). Claims are read with their question when the run used short answers, as it did."""
    rescored = []
    for i, record in enumerate(records, start=1):
        if record.generative is not None:
            context = record.question if short_answers else None
            sentences = []
            for sentence in record.generative.sentences:
                texts = {d: corpus[d][1] for d in sentence.citations if d in corpus}
                claim = claim_of(sentence.text, context)
                support = checker.score([claim], [list(texts.values())])[0] if texts else 0.0
                alone, without = _precision_scores(claim, texts, checker)
                sentences.append(
                    replace(sentence, support=support, alone=tuple(alone), without=tuple(without))
                )
            record = replace(record, generative=replace(record.generative, sentences=tuple(sentences)))
        rescored.append(record)
        if i % 10 == 0 or i == len(records):
            progress(f"re-scored support of {i}/{len(records)} records")
    return rescored


def collect_records(
    assistant: Assistant,
    questions: list[SquadQuestion],
    *,
    with_generation: bool = True,
    with_extractive: bool = True,
    progress: Callable[[str], None] = lambda _m: None,
    sink: Path | None = None,
) -> list[QuestionRecord]:
    """Answer every question in generative (support scored, gate off) and extractive mode (without
    `with_extractive`, only generative: its record's extractive answer is an empty abstention); each
    record is also appended to `sink` as it completes, so an interrupted run can still be scored, and a
    question already in `sink` is not asked again (a run cut short resumes)."""
    done = {r.id: r for r in read_records(sink)} if sink is not None and sink.exists() else {}
    records = []
    checker = assistant.support_checker
    started = time.perf_counter()
    for i, q in enumerate(questions, start=1):
        if q.id in done:  # answered by an earlier run cut short (resumed from its sink)
            records.append(done[q.id])
            continue
        extractive = AnswerRecord("", True, (), 0.0)
        if with_extractive or not with_generation:
            answer = assistant.ask(q.question, answer_mode="extractive", grounding_mode="flag")
            extractive = answer_record(answer, checker, assistant.claim_context(q.question, True))
        generative = None
        if with_generation:
            answer = assistant.ask(q.question, grounding_mode="flag")
            generative = answer_record(answer, checker, assistant.claim_context(q.question, False))
        evidence = evidence_score(answer.passages) or 0.0
        record = QuestionRecord(
            q.id, q.question, tuple(q.answers), q.gold_doc, evidence, extractive, generative
        )
        records.append(record)
        if sink is not None:
            write_records(sink, [record], append=True)
        if i % 10 == 0 or i == len(questions) or sink is not None:
            progress(f"{i}/{len(questions)} questions ({time.perf_counter() - started:.0f} s)")
    return records


def run_answers(
    data: Path,
    settings: Settings,
    *,
    articles: str,
    limit: int | None,
    modes: tuple[str, ...] = MODES,
    index_dir: Path | None = None,
    progress: Callable[[str], None] = lambda _m: None,
    sink: Path | None = None,
) -> tuple[dict[str, Any], list[QuestionRecord]]:
    """Index the articles, answer the sampled questions and score every mode: results and raw records."""
    squad = load_squad(data, articles)
    questions = squad.sample(limit)
    # Gate and refusal threshold after the fact: generate for every question, so calibration sees it all.
    run_settings = settings.model_copy(
        update={"min_relevance": -1.0, "refusal_threshold": 1.0, "min_confidence": 0.0}
    )
    assistant = build_index(squad.retrieval(), run_settings, index_dir)
    progress(f"index: {len(squad.corpus)} paragraphs; {len(questions)} questions")
    records = collect_records(
        assistant,
        questions,
        with_generation=any(m != "extractive" for m in modes),
        with_extractive="extractive" in modes,
        progress=progress,
        sink=sink,
    )
    meta = {"dataset": data.name, "articles": articles, "limit": limit}
    results = results_for(records, settings, modes, meta, assistant.support_checker.name)
    return with_confidence(results, records, settings), records


def rescore_answers(
    records_path: Path,
    data: Path,
    settings: Settings,
    *,
    articles: str,
    limit: int | None,
    modes: tuple[str, ...] = MODES,
    score_support_again: bool = False,
    progress: Callable[[str], None] = lambda _m: None,
) -> tuple[dict[str, Any], list[QuestionRecord]]:
    """Score the records of an earlier run under `settings` (e.g. after calibrating); with
    `score_support_again`, first score their generative sentences with the configured support checker."""
    from rag.assistant import Assistant

    records = read_records(records_path)
    meta = {"dataset": data.name, "articles": articles, "limit": limit, "rescored": str(records_path)}
    checker_name = "as recorded"
    if score_support_again:
        checker = Assistant(settings).support_checker
        records = resupport(
            records,
            load_squad(data, articles).corpus,
            checker,
            short_answers=settings.answer_style == "short",
            progress=progress,
        )
        checker_name = checker.name
    return with_confidence(
        results_for(records, settings, modes, meta, checker_name), records, settings
    ), records


def with_confidence(
    results: dict[str, Any], records: list[QuestionRecord], settings: Settings
) -> dict[str, Any]:
    """`results` with the confidence section (AUROC, coverage-risk curve, operating point of
    `min_confidence`) when the records carry signals; the calibrator is the configured or shipped one,
    applied to the stored signals, so a refit is scored without answering again."""
    from rag.evaluation.confidence import confidence_report
    from rag.signals import DEFAULT_CALIBRATOR, Calibrator

    if not any(r.generative is not None and r.generative.signals for r in records):
        return results
    path = settings.calibrator_path or DEFAULT_CALIBRATOR
    calibrator = Calibrator.load(path) if path.exists() or settings.calibrator_path else None
    report = confidence_report(records, calibrator, settings.min_confidence)
    report["calibrator"] = str(path) if calibrator is not None else "none (as recorded)"
    return {**results, "confidence": report}
