"""The answer benchmark: SQuAD questions over their articles' paragraphs, answered end to end by rag.

Each paragraph is a document and the gold paragraph is the citation target. One generation per
question serves three modes, scored after the fact from the stored records: `generative` (checking
off), `strict` (unsupported sentences removed, abstaining when none remain) and `extractive` (no
language model). The evidence gate is applied after the fact too, so `rag eval calibrate` can choose
its threshold from the same records. Flag mode writes the same text as `generative`.
"""

from __future__ import annotations

import json
import random
import re
import string
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.evaluation.retrieval import RetrievalDataset, build_index, parse_articles
from rag.grounding import claim_of, strip_citations
from rag.metrics import percentile
from rag.policy import GroundingPolicy
from rag.retrieval import evidence_score
from rag.types import Answer

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


@dataclass
class SquadQuestion:
    id: str
    question: str
    answers: list[str]
    gold_doc: str

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


def load_squad_questions(
    path: Path, articles: str, limit: int | None = None, seed: int = 0
) -> tuple[RetrievalDataset, list[SquadQuestion]]:
    """The selected articles' paragraphs as a corpus, and a seeded sample of `limit` of their questions.

    `path` is a SQuAD 1.1 or 2.0 JSON file, or a folder holding one (its dev file when there are several).
    """
    path = squad_file(path)
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    selection = parse_articles(articles)
    corpus: dict[str, tuple[str, str]] = {}
    questions: list[SquadQuestion] = []
    for a, article in enumerate(data[selection], start=selection.start or 0):
        title = article["title"].replace("_", " ")
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"a{a:02d}-p{p:03d}"
            corpus[doc_id] = (title, paragraph["context"])
            for qa in paragraph["qas"]:
                golds = [] if qa.get("is_impossible") else [x["text"] for x in qa["answers"]]
                questions.append(SquadQuestion(qa["id"], qa["question"], golds, doc_id))
    if limit is not None and limit < len(questions):
        questions = random.Random(seed).sample(questions, limit)
    dataset = RetrievalDataset(path.parent.name, f"articles {articles}", corpus, {}, {})
    return dataset, questions


def squad_file(path: Path) -> Path:
    """The SQuAD JSON file itself, or the one (dev) file in a folder."""
    if not path.is_dir():
        return path
    files = sorted(path.glob("*.json"))
    dev = [f for f in files if f.name.startswith("dev")]
    if not (dev or files):
        raise ValueError(f"no SQuAD .json file in {path}")
    return (dev or files)[0]


# SQuAD's official normalization and scores.
def normalize_answer(text: str) -> str:
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(prediction: str, golds: list[str]) -> float:
    return float(max(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def token_f1(prediction: str, golds: list[str]) -> float:
    def f1(gold: str) -> float:
        predicted, wanted = normalize_answer(prediction).split(), normalize_answer(gold).split()
        common = sum((Counter(predicted) & Counter(wanted)).values())
        if common == 0:
            return 0.0
        precision, recall = common / len(predicted), common / len(wanted)
        return 2 * precision * recall / (precision + recall)

    return max(f1(g) for g in golds)


def _record(answer: Answer, checker: Any, context: str | None = None) -> dict[str, Any]:
    """What scoring needs from one answer: text, abstention, sentences with their support, and the
    support of every citation alone and of the others without it (ALCE's precision test); claims are
    read with the question `context` as the answer was checked (see `claim_of`)."""
    passages = answer.passages
    sentences = []
    for s in answer.sentences:
        texts = {n: passages[n - 1].chunk.text for n in s.citations}
        alone, without = _precision_scores(claim_of(s.text, context), texts, checker)
        sentences.append(
            {
                "text": s.text,
                "citations": [passages[n - 1].chunk.doc_id for n in s.citations],
                "invalid": list(s.invalid_citations),
                "support": s.support,
                "alone": alone,
                "without": without,
            }
        )
    return {
        "text": answer.text,
        "abstained": answer.abstained,
        "sentences": sentences,
        "seconds": answer.timings.get("total_seconds", 0.0),
        "refusal": answer.refusal_probability,
    }


def _precision_scores(claim: str, texts: dict[Any, str], checker: Any) -> tuple[list[float], list[float]]:
    """Support of the claim by each cited text alone, and by the others without it (two or more cited)."""
    if len(texts) < 2:
        return [], []
    alone = checker.score([claim] * len(texts), [[t] for t in texts.values()])
    without = checker.score([claim] * len(texts), [[t for d, t in texts.items() if d != n] for n in texts])
    return alone, without


def resupport(
    records: list[dict[str, Any]],
    corpus: dict[str, tuple[str, str]],
    checker: Any,
    *,
    short_answers: bool,
    progress: Callable[[str], None] = lambda _m: None,
) -> list[dict[str, Any]]:
    """The records with the generative answer's sentences scored again by `checker` against the paragraphs
    they cite: checkers compared on the very same answers, without generating again (extractive answers
    keep their scores). Claims are read with their question when the run used short answers, as it did."""
    rescored = []
    for i, record in enumerate(records, start=1):
        record = json.loads(json.dumps(record))
        if "generative" in record:
            context = record["question"] if short_answers else None
            for sentence in record["generative"]["sentences"]:
                texts = {d: corpus[d][1] for d in sentence["citations"] if d in corpus}
                claim = claim_of(sentence["text"], context)
                sentence["support"] = checker.score([claim], [list(texts.values())])[0] if texts else 0.0
                sentence["alone"], sentence["without"] = _precision_scores(claim, texts, checker)
        rescored.append(record)
        if i % 10 == 0 or i == len(records):
            progress(f"re-scored support of {i}/{len(records)} records")
    return rescored


def collect_records(
    assistant: Any,
    questions: list[SquadQuestion],
    *,
    with_generation: bool = True,
    progress: Callable[[str], None] = lambda _m: None,
    sink: Path | None = None,
) -> list[dict[str, Any]]:
    """Answer every question in generative (support scored, gate off) and extractive mode; each record
    is also appended to `sink` as it completes, so an interrupted run can still be scored."""
    records = []
    checker = assistant.support_checker
    started = time.perf_counter()
    for i, q in enumerate(questions, start=1):
        record: dict[str, Any] = {
            "id": q.id,
            "question": q.question,
            "answers": q.answers,
            "gold": q.gold_doc,
        }
        extractive = assistant.ask(q.question, answer_mode="extractive", grounding_mode="flag")
        record["evidence"] = evidence_score(extractive.passages) or 0.0
        record["extractive"] = _record(extractive, checker, assistant.claim_context(q.question, True))
        if with_generation:
            generative = assistant.ask(q.question, grounding_mode="flag")
            record["generative"] = _record(generative, checker, assistant.claim_context(q.question, False))
        records.append(record)
        if sink is not None:
            with open(sink, "a", encoding="utf-8") as handle:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        if i % 10 == 0 or i == len(questions):
            progress(f"{i}/{len(questions)} questions ({time.perf_counter() - started:.0f} s)")
    return records


def _policy(mode: str, gate: float, threshold: float, refusal: float = 1.0) -> GroundingPolicy:
    """The product's grounding policy as a benchmark mode runs it (extractive answers flag, never strip)."""
    return GroundingPolicy(
        mode="strict" if mode == "strict" else "flag",
        min_relevance=gate,
        refusal_threshold=refusal,
        support_threshold=threshold,
    )


@dataclass(frozen=True)
class _StoredSentence:
    """A stored sentence record as the policy reads it."""

    citations: list[str]
    invalid_citations: list[int]
    support: float | None


def _sentence_view(sentence: dict[str, Any]) -> _StoredSentence:
    return _StoredSentence(sentence["citations"], sentence["invalid"], sentence["support"])


def _mode_view(
    record: dict[str, Any], mode: str, gate: float, threshold: float, refusal: float = 1.0
) -> dict[str, Any]:
    """The answer a mode gives for one record under the gate, support and refusal thresholds."""
    policy = _policy(mode, gate, threshold, refusal)
    source = record["extractive" if mode == "extractive" else "generative"]
    refused = mode != "extractive" and policy.refusal_abstains(source.get("refusal"))
    abstained = {"abstained": True, "text": "", "sentences": [], "seconds": source["seconds"]}
    if policy.gate_abstains(record["evidence"]) or source["abstained"] or refused:
        return abstained
    sentences = source["sentences"]
    kept = policy.kept([_sentence_view(s) for s in sentences])
    if kept is None:
        return abstained
    if mode == "strict":
        sentences = [s for s in sentences if policy.is_supported(_sentence_view(s))]
        text = " ".join(s["text"] for s in sentences)
    else:
        text = source["text"]
    return {"abstained": False, "text": text, "sentences": sentences, "seconds": source["seconds"]}


def _supported(sentence: dict[str, Any], threshold: float) -> bool:
    return GroundingPolicy(support_threshold=threshold).is_supported(_sentence_view(sentence))


def score_mode(
    records: list[dict[str, Any]], mode: str, gate: float, threshold: float, refusal: float = 1.0
) -> dict[str, float]:
    """EM/F1, answered and abstain rates, ALCE-style citation recall/precision, gold citation, latency.

    `gate` is the evidence gate, `threshold` the support threshold and `refusal` the refusal-probability
    threshold (1: off) they are scored under."""
    answerable = [r for r in records if r["answers"]]
    unanswerable = [r for r in records if not r["answers"]]
    views = {r["id"]: _mode_view(r, mode, gate, threshold, refusal) for r in records}
    answered = [r for r in answerable if not views[r["id"]]["abstained"]]
    em = [exact_match(strip_citations(views[r["id"]]["text"]), r["answers"]) for r in answered]
    f1 = [token_f1(strip_citations(views[r["id"]]["text"]), r["answers"]) for r in answered]
    recalled = total_sentences = precise = total_citations = 0
    for view in views.values():
        for s in view["sentences"]:
            total_sentences += 1
            supported = _supported(s, threshold)
            recalled += supported
            cited = s["citations"]
            total_citations += len(cited) + len(s["invalid"])
            if supported and len(cited) == 1:
                precise += 1
            elif supported:
                precise += sum(
                    a >= threshold or w < threshold for a, w in zip(s["alone"], s["without"], strict=True)
                )
    gold_cited = [any(r["gold"] in s["citations"] for s in views[r["id"]]["sentences"]) for r in answered]
    seconds = [v["seconds"] for v in views.values()]

    def share(values: list[float]) -> float:
        return 100.0 * sum(values) / len(values) if values else 0.0

    return {
        "questions": float(len(records)),
        "answerable": float(len(answerable)),
        "unanswerable": float(len(unanswerable)),
        "exact_match": share(em),
        "f1": share(f1),
        "answered_rate": 100.0 * len(answered) / max(len(answerable), 1),
        "abstain_rate_unanswerable": share([float(views[r["id"]]["abstained"]) for r in unanswerable]),
        "citation_recall": 100.0 * recalled / max(total_sentences, 1),
        "citation_precision": 100.0 * precise / max(total_citations, 1),
        "gold_cited_rate": share([float(g) for g in gold_cited]),
        "latency_s_mean": sum(seconds) / max(len(seconds), 1),
        "latency_s_p50": percentile(seconds, 50),
        "latency_s_p95": percentile(seconds, 95),
    }


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
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Index the articles, answer the sampled questions and score every mode: results and raw records."""
    dataset, questions = load_squad_questions(data, articles, limit)
    # Gate and refusal threshold after the fact: generate for every question, so calibration sees it all.
    run_settings = settings.model_copy(update={"min_relevance": -1.0, "refusal_threshold": 1.0})
    assistant = build_index(dataset, run_settings, index_dir)
    progress(f"index: {len(dataset.corpus)} paragraphs; {len(questions)} questions")
    records = collect_records(
        assistant,
        questions,
        with_generation=any(m != "extractive" for m in modes),
        progress=progress,
        sink=sink,
    )
    meta = {"dataset": data.name, "articles": articles, "limit": limit}
    return results_for(records, settings, modes, meta, assistant.support_checker.name), records


def results_for(
    records: list[dict[str, Any]],
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


def score_records(
    records: list[dict[str, Any]], modes: tuple[str, ...], gate: float, threshold: float, refusal: float = 1.0
) -> dict[str, Any]:
    return {
        "gate": gate,
        "support_threshold": threshold,
        "refusal_threshold": refusal,
        "modes": {
            m: {k: round(v, 4) for k, v in score_mode(records, m, gate, threshold, refusal).items()}
            for m in modes
        },
    }


def calibrate(
    records: list[dict[str, Any]],
    min_answered: float = 88.0,
    mode: str = "strict",
    support_threshold: float = 0.05,
) -> dict[str, Any]:
    """The evidence gate, refusal threshold (and, for strict mode, support threshold) that abstain most on
    unanswerable questions while answering at least `min_answered`% of the answerable ones (a margin over
    the 85% target). Other modes keep `support_threshold`, which does not change what they answer."""
    gates = [-1.0, *_grid([r["evidence"] for r in records])]
    refusals = [*_grid([r["generative"].get("refusal") for r in records if r.get("generative")]), 1.0]
    thresholds = [round(0.05 * i, 2) for i in range(20)] if mode == "strict" else [support_threshold]
    best: tuple[float, dict[str, Any]] | None = None
    for gate in gates:
        for refusal in refusals:
            for threshold in thresholds:
                m = score_mode(records, mode, gate, threshold, refusal)
                if m["answered_rate"] < min_answered:
                    continue
                objective = m["abstain_rate_unanswerable"] + 0.5 * m["answered_rate"]
                if best is None or objective > best[0]:
                    chosen = {
                        "min_relevance": gate,
                        "refusal_threshold": refusal,
                        "support_threshold": threshold,
                    }
                    best = (objective, {**chosen, f"dev_{mode}": m})
    if best is None:
        return {
            "min_relevance": -1.0,
            "refusal_threshold": 1.0,
            "support_threshold": 0.0,
            "note": "no setting reaches min_answered",
        }
    return {**best[1], "mode": mode, "min_answered": min_answered}


def _grid(values: list[float | None], points: int = 24) -> list[float]:
    """Up to `points` candidate thresholds spread over the recorded values (each a value seen)."""
    seen = sorted({round(v, 4) for v in values if v is not None})
    return seen[:: max(len(seen) // points, 1)]


def write_answer_report(
    results: dict[str, Any], records: list[dict[str, Any]], out_dir: Path, command: str
) -> list[Path]:
    """results.json, records.jsonl, report.md and a bar plot of the main figures per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    results = {**results, "command": command}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    with open(out_dir / "records.jsonl", "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    keys = QUALITY_METRICS
    figure, axis = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(len(results["modes"]), 1)
    for i, (mode, m) in enumerate(results["modes"].items()):
        axis.bar([k + i * width for k in range(len(keys))], [m[k] for k in keys], width, label=mode)
    axis.set_xticks([k + width for k in range(len(keys))], [k.replace("_", "\n") for k in keys], fontsize=8)
    axis.set_ylim(0, 100)
    axis.legend()
    axis.set_title(f"{results['dataset']} {results['articles']}: {len(records)} questions")
    figure.tight_layout()
    figure.savefig(out_dir / "answers.png", dpi=100)
    plt.close(figure)
    lines = [
        f"# Answer benchmark: {results['dataset']}, articles {results['articles']}",
        "",
        f"Command: `{command}`",
        f"Gate (min_relevance) {results['gate']}, support threshold {results['support_threshold']}, "
        f"checker {results.get('support_checker')}.",
        "",
        "| mode | " + " | ".join(keys) + " | latency s (mean) |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for mode, m in results["modes"].items():
        lines.append(
            f"| {mode} | " + " | ".join(f"{m[k]:.1f}" for k in keys) + f" | {m['latency_s_mean']:.2f} |"
        )
    lines += ["", "![figures per mode](answers.png)", ""]
    (out_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return [out_dir / n for n in ("results.json", "records.jsonl", "report.md", "answers.png")]
