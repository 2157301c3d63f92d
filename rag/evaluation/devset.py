"""The real-documentation development set: questions over Node.js API pages and over `documents/`.

The questions (`evals/devset/questions.jsonl`) are written by the project; the Node.js pages are read
from Debian's `nodejs` package, never copied. Each question is answered end to end by the product with
its default settings, and scored so that a false refusal costs as much as a false answer: an answerable
question is right when the answer matches a gold answer (token F1 >= 0.5, or contains one) and cites
the document that states it; any other question is right when the product abstains.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.evaluation.scoring import normalize_answer, token_f1

KINDS = ("answerable", "unanswerable", "memory_trap", "follow_up")
COLLECTIONS = ("node", "documents")
NODE_PAGES = (
    "fs.md",
    "http.md",
    "stream.md",
    "events.md",
    "path.md",
    "crypto.md",
    "child_process.md",
    "buffer.md",
)
"""The Node.js API pages the `node` collection indexes."""
REPORTED_SETTINGS = (
    "generator",
    "embedder",
    "prompt_passage_tokens",
    "answer_style",
    "grounding_mode",
    "support_checker",
    "retrieval_mode",
    "top_k",
    "min_relevance",
    "refusal_threshold",
    "min_confidence",
    "calibrator_path",
)
"""The settings a development-set or trust-set report names (the ones that decide its answers)."""
DEBIAN_NODE_DOCS = Path("/usr/share/doc/nodejs/api")
MIN_F1 = 0.5
"""Token F1 at or above which an answer counts as matching a gold answer."""

_FIELDS = {"id", "collection", "kind", "question", "history", "answers", "source", "also_in", "absent"}


@dataclass(frozen=True)
class DevQuestion:
    """One question of the set. `answers` is empty when the collection does not answer it; `source`
    (and `also_in`) name the files that state the answer; `absent` lists terms checked to occur
    nowhere in the collection, the evidence that an unanswerable question is one."""

    id: str
    collection: str
    kind: str
    question: str
    history: list[dict[str, str]] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)
    source: str | None = None
    also_in: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    @property
    def sources(self) -> list[str]:
        """Every file whose citation counts as the right document."""
        return [self.source, *self.also_in] if self.source else []


def parse_question(record: dict[str, Any]) -> DevQuestion:
    """A record checked for shape and consistency; ValueError says what is wrong."""
    unknown = set(record) - _FIELDS
    if unknown:
        raise ValueError(f"unknown fields {sorted(unknown)}")
    for name in ("id", "collection", "kind", "question"):
        if not isinstance(record.get(name), str) or not record[name].strip():
            raise ValueError(f"'{name}' must be a non-empty string")
    question = DevQuestion(**record)
    if question.collection not in COLLECTIONS:
        raise ValueError(f"collection {question.collection!r} is not one of {COLLECTIONS}")
    if question.kind not in KINDS:
        raise ValueError(f"kind {question.kind!r} is not one of {KINDS}")
    if not isinstance(question.history, list) or not all(
        isinstance(t, dict) and t.get("role") in ("user", "assistant") and isinstance(t.get("content"), str)
        for t in question.history
    ):
        raise ValueError("'history' must be a list of {role: user|assistant, content} turns")
    if (question.kind == "follow_up") != bool(question.history):
        raise ValueError("follow-ups, and only follow-ups, carry a history")
    if not all(isinstance(a, str) and normalize_answer(a) for a in question.answers):
        raise ValueError("every answer must be a string with words left after normalisation")
    if question.kind == "answerable" and not question.answerable:
        raise ValueError("an answerable question needs answers")
    if question.kind in ("unanswerable", "memory_trap") and question.answerable:
        raise ValueError(f"a {question.kind} question has no answers")
    if question.answerable != bool(question.source):
        raise ValueError("'source' names the answer's file exactly when there are answers")
    if not question.answerable and (question.also_in or not question.absent):
        raise ValueError("a question without answers lists the 'absent' terms that show it")
    if question.collection == "node" and any(s not in NODE_PAGES for s in question.sources):
        raise ValueError(f"node sources must be among {NODE_PAGES}")
    if question.collection == "documents" and any(not s.startswith("documents/") for s in question.sources):
        raise ValueError("documents sources are paths under documents/")
    return question


def load_questions(path: Path) -> list[DevQuestion]:
    """The questions of a JSON-lines file, each validated; ids must be unique."""
    questions: list[DevQuestion] = []
    seen: set[str] = set()
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            question = parse_question(json.loads(line))
        except (ValueError, TypeError) as error:
            raise ValueError(f"{path}:{number}: {error}") from error
        if question.id in seen:
            raise ValueError(f"{path}:{number}: duplicate id {question.id!r}")
        seen.add(question.id)
        questions.append(question)
    return questions


def sample_questions(questions: list[DevQuestion], limit: int | None, seed: int = 0) -> list[DevQuestion]:
    """`limit` questions drawn per kind in proportion to the kind's share (largest remainders), in
    file order; all of them when `limit` is None or not smaller."""
    if limit is None or limit >= len(questions):
        return list(questions)
    by_kind = {kind: [q for q in questions if q.kind == kind] for kind in KINDS}
    quotas = {kind: limit * len(items) / len(questions) for kind, items in by_kind.items()}
    counts = {kind: int(quota) for kind, quota in quotas.items()}
    for kind in sorted(quotas, key=lambda k: counts[k] - quotas[k])[: limit - sum(counts.values())]:
        counts[kind] += 1
    rng = random.Random(seed)
    chosen = {q.id for kind, items in by_kind.items() for q in rng.sample(items, counts[kind])}
    return [q for q in questions if q.id in chosen]


def node_docs_folder(explicit: Path | None = None) -> Path | None:
    """The folder of the Node.js API pages: `explicit`, else where Debian's `nodejs` package put them;
    None when no folder holds all the pages."""
    candidates = [explicit] if explicit else [*_dpkg_api_folders(), DEBIAN_NODE_DOCS]
    for folder in candidates:
        if folder is not None and all((folder / page).is_file() for page in NODE_PAGES):
            return folder
    return None


def _dpkg_api_folders() -> list[Path]:
    if shutil.which("dpkg") is None:
        return []
    listing = subprocess.run(["dpkg", "-L", "nodejs"], capture_output=True, text=True, check=False).stdout
    return sorted({Path(line).parent for line in listing.splitlines() if re.search(r"/api/[^/]+\.md$", line)})


def collection_files(collection: str, node_docs: Path, documents: Path) -> list[Path]:
    """The files a collection indexes."""
    if collection == "node":
        return [node_docs / page for page in NODE_PAGES]
    return sorted(p for p in documents.iterdir() if p.is_file() and not p.name.startswith("."))


def source_path(source: str, collection: str, node_docs: Path, documents: Path) -> Path:
    """Where a question's `source` file lies."""
    return node_docs / source if collection == "node" else documents / Path(source).name


def contains_answer(prediction: str, golds: Iterable[str]) -> bool:
    """Whether the normalised prediction holds a normalised gold answer as whole words."""
    padded = f" {normalize_answer(prediction)} "
    return any(f" {normalize_answer(gold)} " in padded for gold in golds)


def judge(question: DevQuestion, text: str, abstained: bool, cited: list[str]) -> dict[str, Any]:
    """One answer's outcome: `right`, `wrong` (answered, not matching), `uncited` (matching, but not
    citing a source document), `false_refusal`, `abstained` or `false_answer`. `cited` are the
    documents the answer's citations name."""
    if not question.answerable:
        return {"outcome": "abstained" if abstained else "false_answer", "correct": abstained, "f1": None}
    if abstained:
        return {"outcome": "false_refusal", "correct": False, "f1": 0.0}
    f1 = token_f1(text, question.answers)
    matches = f1 >= MIN_F1 or contains_answer(text, question.answers)
    names = {Path(source).name for source in question.sources}
    cites_source = any(Path(document).name in names for document in cited)
    outcome = "right" if matches and cites_source else ("uncited" if matches else "wrong")
    return {"outcome": outcome, "correct": outcome == "right", "f1": f1}


def _rates(records: list[dict[str, Any]]) -> dict[str, float]:
    answerable = [r for r in records if r["expected"] == "answer"]
    silent = [r for r in records if r["expected"] == "abstain"]

    def share(items: list[dict[str, Any]], outcome: str) -> float:
        return 100.0 * sum(r["outcome"] == outcome for r in items) / len(items) if items else 0.0

    correct = sum(r["correct"] for r in records)
    rates = {
        "questions": float(len(records)),
        "accuracy": 100.0 * correct / len(records) if records else 0.0,
        "answerable": float(len(answerable)),
        "right": share(answerable, "right"),
        "uncited": share(answerable, "uncited"),
        "wrong": share(answerable, "wrong"),
        "false_refusal": share(answerable, "false_refusal"),
        "unanswerable": float(len(silent)),
        "abstained": share(silent, "abstained"),
        "false_answer": share(silent, "false_answer"),
    }
    parts = [rates[name] for name, items in (("right", answerable), ("abstained", silent)) if items]
    rates["balanced_accuracy"] = sum(parts) / len(parts) if parts else 0.0
    return rates


def score(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Rates (percent) per kind, per collection and in total. Accuracy weighs every question alike, so
    a false refusal costs exactly what a false answer costs; balanced accuracy averages the right rate
    of answerable questions and the abstention rate of the others."""
    return {
        "total": _rates(records),
        "kinds": {kind: _rates([r for r in records if r["kind"] == kind]) for kind in KINDS},
        "collections": {c: _rates([r for r in records if r["collection"] == c]) for c in COLLECTIONS},
    }


def answer_record(question: DevQuestion, answer: Any) -> dict[str, Any]:
    """What the report keeps of one answer (an `rag.types.Answer`), with its judgement."""
    cited = [citation.document for citation in answer.citations]
    names = {Path(source).name for source in question.sources}
    return {
        "id": question.id,
        "kind": question.kind,
        "collection": question.collection,
        "question": question.question,
        "expected": "answer" if question.answerable else "abstain",
        "gold": question.answers,
        "sources": question.sources,
        "answer": answer.text,
        "abstained": answer.abstained,
        "cited": cited,
        "source_retrieved": any(Path(p.source).name in names for p in answer.passages) if names else None,
        "seconds": answer.timings.get("total_seconds"),
        "refusal_probability": answer.refusal_probability,
        "confidence": answer.confidence,
        "recovered": answer.recovered,
        "signals": {k: round(v, 5) for k, v in answer.signals.items()},
        "hidden_state": [round(h, 4) for h in answer.hidden_state] if answer.hidden_state else None,
        **judge(question, answer.text, answer.abstained, cited),
    }


def recalibrated(records: list[dict[str, Any]], calibrator: Any) -> list[dict[str, Any]]:
    """The records with `confidence` read again by `calibrator` (an `rag.signals.Calibrator`) from their
    stored signals and hidden state, so a refit is scored without asking again; a record that stored no
    signals (abstained before the model answered) keeps None."""
    out = []
    for record in records:
        signals = dict(record.get("signals") or {})
        if signals and calibrator.probe is not None and record.get("hidden_state"):
            signals["hidden_probe"] = calibrator.probe.log_odds(record["hidden_state"])
        out.append({**record, "confidence": calibrator.probability(signals) if signals else None})
    return out


def at_confidence(records: list[dict[str, Any]], threshold: float) -> list[dict[str, Any]]:
    """The records as they would be with `min_confidence` = `threshold`: an answer whose confidence is
    below it becomes an abstention (a false refusal when the question is answerable)."""
    out = []
    for record in records:
        confidence = record.get("confidence")
        if record["abstained"] or confidence is None or confidence >= threshold:
            out.append(record)
            continue
        answerable = record["expected"] == "answer"
        outcome = "false_refusal" if answerable else "abstained"
        out.append({**record, "abstained": True, "outcome": outcome, "correct": not answerable})
    return out


def confidence_curve(records: list[dict[str, Any]], thresholds: Iterable[float]) -> list[dict[str, float]]:
    """Per threshold: answerable right %, false refusals %, unanswerable (and traps) abstained %, accuracy;
    and the ROC AUC of the confidence for "answered right" against everything else (None: one class)."""
    from sklearn.metrics import roc_auc_score

    rows = []
    for threshold in thresholds:
        rates = _rates(at_confidence(records, threshold))
        rows.append(
            {
                "min_confidence": threshold,
                **{
                    k: rates[k]
                    for k in ("right", "false_refusal", "abstained", "accuracy", "balanced_accuracy")
                },
            }
        )
    labels = [int(r["correct"] and r["expected"] == "answer") for r in records]
    scores = [0.0 if r["abstained"] or r.get("confidence") is None else r["confidence"] for r in records]
    auroc = float(roc_auc_score(labels, scores)) if len(set(labels)) == 2 else None
    return [{"auroc": auroc}, *rows]


def run_devset(
    questions: list[DevQuestion],
    settings: Settings,
    *,
    node_docs: Path,
    documents: Path,
    index_root: Path | None = None,
    progress: Callable[[str], None] = lambda _m: None,
    sink: Path | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Index each collection the questions use (in `index_root`, reused when already built there), ask
    every question with its history and score: results and one record per question, each also appended
    to the JSON-lines file `sink` as soon as it is judged, so a run cut short keeps its answers."""
    from rag.assistant import Assistant

    root = index_root or Path(tempfile.mkdtemp(prefix="rag-devset-"))
    records: list[dict[str, Any]] = []
    assistants: dict[str, Assistant] = {}
    for collection in COLLECTIONS:
        if not any(q.collection == collection for q in questions):
            continue
        first = next(iter(assistants.values()), None)  # one load of each model serves both collections
        assistant = Assistant(
            settings.model_copy(update={"index_dir": root / collection}),
            embedder=first.embedder if first else None,
            generator=first.generator if first else None,
        )
        report = assistant.ingest(collection_files(collection, node_docs, documents))
        progress(
            f"{collection}: {len(report.added)} added, {len(report.unchanged)} unchanged, "
            f"{report.chunks_added} chunks, {len(report.failed)} failed ({report.seconds:.0f} s)"
        )
        assistants[collection] = assistant
    for number, question in enumerate(questions, start=1):
        answer = assistants[question.collection].ask(question.question, history=question.history or None)
        record = answer_record(question, answer)
        records.append(record)
        if sink is not None:
            with sink.open("a", encoding="utf-8") as out:
                out.write(json.dumps(record) + "\n")
        seconds = record["seconds"] or 0.0
        progress(f"[{number}/{len(questions)}] {question.id}: {record['outcome']} ({seconds:.1f} s)")
    return {"questions": len(records), "scores": score(records)}, records


_COLUMNS = (
    ("questions", "questions", "{:.0f}"),
    ("accuracy", "accuracy %", "{:.1f}"),
    ("right", "answerable right+cited %", "{:.1f}"),
    ("uncited", "matching, wrong doc %", "{:.1f}"),
    ("wrong", "wrong %", "{:.1f}"),
    ("false_refusal", "false refusal %", "{:.1f}"),
    ("abstained", "unanswerable abstained %", "{:.1f}"),
    ("false_answer", "false answer %", "{:.1f}"),
)


def markdown_report(results: dict[str, Any], records: list[dict[str, Any]], command: str = "") -> str:
    """The scores as Markdown tables (per kind, per collection, total) and every question not right."""

    def row(name: str, rates: dict[str, float]) -> str:
        cells = []
        for key, _title, fmt in _COLUMNS:
            empty = (key in ("right", "uncited", "wrong", "false_refusal") and not rates["answerable"]) or (
                key in ("abstained", "false_answer") and not rates["unanswerable"]
            )
            cells.append("-" if empty or not rates["questions"] else fmt.format(rates[key]))
        return f"| {name} | " + " | ".join(cells) + " |\n"

    scores = results["scores"]
    header = "| | " + " | ".join(title for _key, title, _fmt in _COLUMNS) + " |\n"
    header += "|---" * (len(_COLUMNS) + 1) + "|\n"
    lines = [f"Command: `{command}`\n\n" if command else ""]
    lines.append(header)
    lines += [row(kind, scores["kinds"][kind]) for kind in KINDS if scores["kinds"][kind]["questions"]]
    lines += [row(c, scores["collections"][c]) for c in COLLECTIONS if scores["collections"][c]["questions"]]
    lines.append(row("**total**", scores["total"]))
    total = scores["total"]
    lines.append(f"\nBalanced accuracy (mean of right and abstained): {total['balanced_accuracy']:.1f} %.\n")
    curve = results.get("confidence_curve")
    if curve:
        auroc = curve[0]["auroc"]
        lines.append(
            "\nConfidence (the calibrator applied to each answer's stored signals): ROC AUC of "
            f"answered-right against everything else {'-' if auroc is None else f'{auroc:.3f}'}. "
            "Abstaining below each `min_confidence`:\n\n| min_confidence | answerable right % | "
            "false refusal % | unanswerable abstained % | accuracy % | balanced accuracy % |\n"
            "|---|---|---|---|---|---|\n"
        )
        for point in curve[1:]:
            lines.append(
                f"| {point['min_confidence']:.2f} | {point['right']:.1f} | {point['false_refusal']:.1f} | "
                f"{point['abstained']:.1f} | {point['accuracy']:.1f} | {point['balanced_accuracy']:.1f} |\n"
            )
    misses = [r for r in records if not r["correct"]]
    if misses:
        lines.append("\n| id | kind | outcome | source retrieved | answer |\n|---|---|---|---|---|\n")
        for r in misses:
            text = " ".join(r["answer"].split()).replace("|", "\\|")
            text = text if len(text) <= 160 else text[:157] + "..."
            retrieved = "-" if r["source_retrieved"] is None else ("yes" if r["source_retrieved"] else "no")
            lines.append(f"| {r['id']} | {r['kind']} | {r['outcome']} | {retrieved} | {text} |\n")
    return "".join(lines)
