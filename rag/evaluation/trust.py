"""Trust sets: questions whose answer no indexed document holds, asked with the product's defaults.

- `off_collection`: SQuAD v1.1 development questions asked against an index of other development
  articles (none of their paragraphs is indexed), beside `in_collection` questions about the indexed
  articles, in the same run: the product should abstain on the first and answer the second.
- `memory_trap`: questions a small language model likely answers from pre-training (famous facts,
  Node.js and JavaScript trivia), asked against `documents/` plus the eight Node.js API pages of the
  development set, which do not state the answers (`stated_answers` checks it, as the tests do).

A record is judged like the development set's: an in-collection question is `right` when answered
with a gold answer (token F1 >= 0.5 or containing one); any other question is right when abstained.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rag.evaluation.devset import contains_answer
from rag.evaluation.scoring import token_f1
from rag.evaluation.swaps import normalize
from rag.text import strip_citations

SETS = ("in_collection", "off_collection", "memory_trap")
MIN_F1 = 0.5
"""Token F1 at or above which an in-collection answer counts as right."""


@dataclass(frozen=True)
class MemoryTrap:
    """A question whose answer (`known_answers`, the strings checked absent) the collection does not state."""

    id: str
    topic: str
    question: str
    known_answers: list[str]


def load_memory_traps(path: Path) -> list[MemoryTrap]:
    """The traps of a JSON-lines file, validated (fields, unique ids, at least one known answer)."""
    traps: list[MemoryTrap] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        record = json.loads(line)
        if set(record) != {"id", "topic", "question", "known_answers"}:
            raise ValueError(f"{path}:{number}: fields must be id, topic, question, known_answers")
        trap = MemoryTrap(**record)
        if (
            not trap.question.strip()
            or not trap.known_answers
            or not all(a.strip() for a in trap.known_answers)
        ):
            raise ValueError(f"{path}:{number}: a question and non-empty known answers are required")
        if any(t.id == trap.id for t in traps):
            raise ValueError(f"{path}:{number}: duplicate id {trap.id!r}")
        traps.append(trap)
    return traps


def collection_texts(files: Iterable[Path], *, parse: bool = True) -> dict[str, str]:
    """The text of each file as the product reads it (parsed: PDF and HTML included); without `parse`,
    a Markdown or text file is read as it is with its emphasis marks (`*`, `_`, `` ` ``) removed, which
    holds every word the parser keeps and is much faster on the large Node.js pages."""
    from rag.parsers import parse_file

    texts = {}
    for path in files:
        if not parse and path.suffix in (".md", ".txt"):
            texts[path.name] = re.sub(r"[*_`]", "", path.read_text(encoding="utf-8"))
        else:
            texts[path.name] = "\n\n".join(d.text for d in parse_file(path))
    return texts


def stated_answers(traps: Sequence[MemoryTrap], texts: dict[str, str]) -> list[tuple[str, str, str]]:
    """(trap id, known answer, file) for every known answer some text states as whole words
    (case-insensitive, thousands separators ignored): empty when every trap is one."""
    answers = {normalize(a) for trap in traps for a in trap.known_answers}
    anyone = re.compile(r"(?<!\w)(?:" + "|".join(re.escape(a) for a in sorted(answers, key=len)) + r")(?!\w)")
    normalised = {name: normalize(text) for name, text in texts.items()}
    normalised = {name: text for name, text in normalised.items() if anyone.search(text)}  # one pass first
    return [
        (trap.id, answer, name)
        for trap in traps
        for answer in trap.known_answers
        for name, text in normalised.items()
        if re.search(r"(?<!\w)" + re.escape(normalize(answer)) + r"(?!\w)", text)
    ]


@dataclass(frozen=True)
class TrustQuestion:
    """One question of a trust set; `answers` (gold) only for in-collection questions."""

    set: str
    id: str
    question: str
    answers: list[str] = field(default_factory=list)
    gold_doc: str | None = None


def squad_sets(
    questions_in: Sequence[Any], questions_off: Sequence[Any], n_in: int, n_off: int, seed: int = 0
) -> tuple[list[TrustQuestion], list[TrustQuestion]]:
    """Seeded samples of `n_in` answerable questions about the indexed articles and `n_off` about
    articles not indexed (`rag.evaluation.datasets.SquadQuestion`s)."""
    rng = random.Random(seed)
    answerable = [q for q in questions_in if q.answerable]
    inside = rng.sample(answerable, min(n_in, len(answerable)))
    outside = rng.sample(list(questions_off), min(n_off, len(questions_off)))
    return (
        [TrustQuestion("in_collection", q.id, q.question, list(q.answers), q.gold_doc) for q in inside],
        [TrustQuestion("off_collection", q.id, q.question) for q in outside],
    )


def trap_questions(traps: Sequence[MemoryTrap]) -> list[TrustQuestion]:
    return [TrustQuestion("memory_trap", t.id, t.question) for t in traps]


def interleave(groups: Sequence[Sequence[TrustQuestion]]) -> list[TrustQuestion]:
    """Round robin over the groups, in order, until every one is spent: a run cut short still holds
    some of every set."""
    out: list[TrustQuestion] = []
    for i in range(max((len(g) for g in groups), default=0)):
        out.extend(g[i] for g in groups if i < len(g))
    return out


def judge(question: TrustQuestion, text: str, abstained: bool) -> dict[str, Any]:
    """`right` and `f1` of one answer: see the module's docstring."""
    if question.set != "in_collection":
        return {"right": abstained, "f1": None}
    if abstained:
        return {"right": False, "f1": 0.0}
    answer = strip_citations(text)
    f1 = token_f1(answer, question.answers)
    return {"right": f1 >= MIN_F1 or contains_answer(answer, question.answers), "f1": f1}


def answer_record(question: TrustQuestion, answer: Any) -> dict[str, Any]:
    """What the report keeps of one answer (an `rag.types.Answer`) with its judgement."""
    return {
        **asdict(question),
        "answer": answer.text,
        "abstained": answer.abstained,
        "confidence": answer.confidence,
        "refusal_probability": answer.refusal_probability,
        "recovered": answer.recovered,
        "signals": {k: float(v) for k, v in answer.signals.items()} if answer.signals else None,
        "hidden_state": [round(h, 4) for h in answer.hidden_state] if answer.hidden_state else None,
        "cited": [c.document for c in answer.citations],
        "seconds": answer.timings.get("total_seconds"),
        **judge(question, answer.text, answer.abstained),
    }


THRESHOLDS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6)
"""The `min_confidence` values the what-if table shows."""


def at_confidence(records: Sequence[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    """The records as they would be with `min_confidence` = `threshold`: an answer whose confidence is
    below it is withheld (an abstention, judged again); one without a confidence is left as it is."""
    out = []
    for r in records:
        confidence = r.get("confidence")
        if r["abstained"] or confidence is None or confidence >= threshold:
            out.append(dict(r))
        else:
            question = TrustQuestion(r["set"], r["id"], r["question"], list(r.get("answers") or []))
            out.append({**r, "abstained": True, **judge(question, r["answer"], True)})
    return out


def threshold_table(
    records: Sequence[dict[str, Any]], thresholds: Iterable[float] = THRESHOLDS
) -> list[dict[str, float | None]]:
    """Per `min_confidence` threshold: off-collection and memory traps abstained %, in-collection
    answered and right %."""
    rows = []
    for threshold in thresholds:
        sets = summarise_sets(at_confidence(records, threshold))
        rows.append(
            {
                "min_confidence": threshold,
                "off_collection_abstained": sets.get("off_collection", {}).get("abstained"),
                "in_collection_answered": sets.get("in_collection", {}).get("answered"),
                "in_collection_right": sets.get("in_collection", {}).get("right"),
                "memory_trap_abstained": sets.get("memory_trap", {}).get("abstained"),
            }
        )
    return rows


def _auroc(labels: list[int], scores: list[float]) -> float | None:
    """ROC AUC as the share of (positive, negative) pairs ranked right, ties counting half (equal to
    scikit-learn's `roc_auc_score`); None with one class only."""
    positives = [s for label, s in zip(labels, scores, strict=True) if label]
    negatives = [s for label, s in zip(labels, scores, strict=True) if not label]
    if not positives or not negatives:
        return None
    wins = sum((p > n) + 0.5 * (p == n) for p in positives for n in negatives)
    return wins / (len(positives) * len(negatives))


def auroc(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """ROC AUC of the confidence for "answered right" against every other outcome, two ways: `system`
    (an abstention scores 0, as `rag.evaluation.confidence` scores it) and `raw` (the confidence the
    answer carries, also when it was withheld; records without one left out). None: one class only."""
    labels = [int(r["right"] and not r["abstained"] and r["set"] == "in_collection") for r in records]
    system = [0.0 if r["abstained"] or r["confidence"] is None else float(r["confidence"]) for r in records]
    defined = [
        (label, r["confidence"])
        for label, r in zip(labels, records, strict=True)
        if r["confidence"] is not None
    ]
    return {
        "system": _auroc(labels, system),
        "raw": _auroc([d[0] for d in defined], [float(d[1]) for d in defined]),
        "raw_questions": len(defined),
    }


def summarise_sets(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Per set: questions, abstained %, answered %, right % (in-collection: answered with a gold answer;
    other sets: abstained), recovered refusals, mean confidence and seconds."""
    sets: dict[str, Any] = {}
    for name in SETS:
        items = [r for r in records if r["set"] == name]
        if not items:
            continue
        n = len(items)
        confidences = [r["confidence"] for r in items if r["confidence"] is not None]
        seconds = [r["seconds"] for r in items if r.get("seconds") is not None]
        sets[name] = {
            "questions": n,
            "abstained": 100.0 * sum(r["abstained"] for r in items) / n,
            "answered": 100.0 * sum(not r["abstained"] for r in items) / n,
            "right": 100.0 * sum(bool(r["right"]) for r in items) / n,
            "recovered": sum(bool(r.get("recovered")) for r in items),
            "mean_confidence": sum(confidences) / len(confidences) if confidences else None,
            "mean_seconds": sum(seconds) / len(seconds) if seconds else None,
        }
    return sets


def summarise(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`summarise_sets`; AUROC of the confidence over the off-collection run (in plus off), over the
    memory traps with the in-collection questions, and over every record; the what-if table of
    `min_confidence` thresholds; and the targets of issue 11 met or not."""
    sets = summarise_sets(records)
    pick = {
        "off_collection_run": ("in_collection", "off_collection"),
        "memory_traps_with_in_collection": ("in_collection", "memory_trap"),
        "all": SETS,
    }
    aurocs = {name: auroc([r for r in records if r["set"] in chosen]) for name, chosen in pick.items()}
    targets = {}
    if "off_collection" in sets and "in_collection" in sets:
        targets["off_collection_abstained_95"] = sets["off_collection"]["abstained"] >= 95.0
        targets["in_collection_answered_95"] = sets["in_collection"]["answered"] >= 95.0
    if "memory_trap" in sets:
        targets["memory_trap_abstained_90"] = sets["memory_trap"]["abstained"] >= 90.0
    return {
        "questions": len(records),
        "sets": sets,
        "auroc": aurocs,
        "targets": targets,
        "min_confidence_table": threshold_table(records),
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def markdown_summary(summary: dict[str, Any], records: Sequence[dict[str, Any]]) -> str:
    """The summary as Markdown tables, then every question not judged right."""
    lines = [
        "| set | questions | abstained % | answered % | right % | recovered | mean confidence | mean s |\n",
        "|---|---|---|---|---|---|---|---|\n",
    ]
    for name, s in summary["sets"].items():
        lines.append(
            f"| {name} | {s['questions']} | {_pct(s['abstained'])} | {_pct(s['answered'])} "
            f"| {_pct(s['right'])} | {s['recovered']} | {_num(s['mean_confidence'])} "
            f"| {_num(s['mean_seconds'], 1)} |\n"
        )
    lines.append(
        "\nRight: an in-collection question answered with a gold answer (token F1 >= 0.5 or containing "
        "one); an off-collection question or memory trap abstained.\n\n"
        "| AUROC of `confidence` (answered right vs rest) | system (abstained = 0) | raw (as carried) | "
        "questions with a confidence |\n|---|---|---|---|\n"
    )
    for name, a in summary["auroc"].items():
        lines.append(f"| {name} | {_num(a['system'])} | {_num(a['raw'])} | {a['raw_questions']} |\n")
    table = summary.get("min_confidence_table")
    if table and any(r["in_collection_answered"] is not None for r in table):
        lines.append(
            "\nIf answers below a `min_confidence` were withheld (from the recorded confidences):\n\n"
            "| min_confidence | off-collection abstained % | in-collection answered % "
            "| in-collection right % | memory traps abstained % |\n|---|---|---|---|---|\n"
        )
        for row in table:
            lines.append(
                f"| {row['min_confidence']:.2f} | {_pct(row['off_collection_abstained'])} "
                f"| {_pct(row['in_collection_answered'])} | {_pct(row['in_collection_right'])} "
                f"| {_pct(row['memory_trap_abstained'])} |\n"
            )
    if summary["targets"]:
        lines.append("\nTargets (issue 11): ")
        lines.append(
            ", ".join(f"{k} {'met' if v else 'missed'}" for k, v in summary["targets"].items()) + ".\n"
        )
    wrong = [r for r in records if not r["right"]]
    if wrong:
        lines.append("\n| set | id | question | answer | confidence |\n|---|---|---|---|---|\n")
        for r in wrong:
            answer = " ".join(strip_citations(r["answer"]).split()).replace("|", "\\|")
            answer = answer[:157] + "..." if len(answer) > 160 else answer
            question = r["question"].replace("|", "\\|")
            lines.append(f"| {r['set']} | {r['id']} | {question} | {answer} | {_num(r['confidence'])} |\n")
    return "".join(lines)
