"""Fit the confidence calibrator (rag/calibrator.json) on SQuAD 2.0 development articles: one command.

    RAG_ANSWER_STYLE=short OMP_NUM_THREADS=1 python evals/fit_calibrator.py --collect 300 \
        --records evals/out/calibrator-dev/records.jsonl

`--collect N` first answers N sampled questions of the development articles end to end (the product's own
path, every signal read, nothing withheld: `rag eval answers --split dev --mode generative`), writing
each record as it completes (records.partial.jsonl, usable if the run is cut short). Without it the
stored records are read again, so a refit after a change of features or labels takes seconds.
Refuses records from reserved articles. Writes the calibrator with its features, weights, data
manifest, this command, the held-out (5-fold) metrics, the per-signal ROC AUC and cost, the default
operating point (`min_confidence`) and the false-refusal recovery rule.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import sys
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.evaluation.confidence import (  # noqa: E402
    answer_of,
    at_threshold,
    is_right,
    roc_auc,
)
from rag.evaluation.records import QuestionRecord, read_records  # noqa: E402
from rag.signals import DEFAULT_CALIBRATOR, FEATURES, HiddenProbe, fit_calibrator, fit_probe  # noqa: E402

SQUAD2 = ROOT.parent / "shared" / "datasets" / "squad_v2_cs224n_half" / "dev-v2.0.cs224n-half.json"
DEV_ARTICLES = 11
"""SQuAD 2.0 half: articles 0-10 are for development (../shared/datasets/README.md); 11-15 are reserved."""
TARGET_ANSWERED = 80.0
"""The issue's target: answer at least 80 % of answerable questions (the operating point keeps it)."""
FOLDS = 5


def collect(limit: int, out: Path, index: Path, resume: bool = False) -> Path:
    """Answer `limit` sampled development questions end to end (with `resume`, those not yet in the
    partial records of a run cut short); the records.jsonl path."""
    from rag.config import Settings
    from rag.evaluation.answers import run_answers
    from rag.evaluation.reports import write_answer_report

    out.mkdir(parents=True, exist_ok=True)
    sink = out / "records.partial.jsonl"
    if not resume:
        sink.unlink(missing_ok=True)
    results, records = run_answers(
        SQUAD2,
        Settings(),
        articles=f"0:{DEV_ARTICLES}",
        limit=limit,
        modes=("generative",),
        index_dir=index,
        progress=lambda m: print(m, flush=True),
        sink=sink,
    )
    write_answer_report(results, records, out, "python " + shlex.join(sys.argv))
    return out / "records.jsonl"


def development_only(records: list[QuestionRecord]) -> list[QuestionRecord]:
    """The records, after checking every gold paragraph (`aNN-pNNN`) lies in a development article."""
    reserved = [r.id for r in records if int(r.gold.split("-")[0][1:]) >= DEV_ARTICLES]
    if reserved:
        raise SystemExit(
            f"{len(reserved)} records come from reserved articles (e.g. {reserved[0]}): refusing"
        )
    return records


def per_signal(rows: list[dict[str, float]], labels: list[int]) -> dict[str, dict[str, float | None]]:
    """Each feature's ROC AUC alone on the answered questions (0.5: no information; below 0.5: the
    feature is higher for wrong answers) and the mean seconds of the reads it needs."""
    table: dict[str, dict[str, float | None]] = {}
    for name in FEATURES:
        values = [r.get(name, math.nan) for r in rows]
        known = [(v, y) for v, y in zip(values, labels, strict=True) if not math.isnan(v)]
        auc = roc_auc([y for _, y in known], [v for v, _ in known]) if known else None
        table[name] = {"auroc": None if auc is None else round(auc, 4), "rows": len(known)}
    return table


def costs(rows: list[dict[str, float]]) -> dict[str, float]:
    names = sorted({k for r in rows for k in r if k.startswith("seconds_")})
    return {n: round(sum(r.get(n, 0.0) for r in rows) / len(rows), 4) for n in names}


def fold_count(labels: list[int]) -> int:
    """FOLDS, or fewer when the smaller class has fewer members (a small collection)."""
    return max(2, min(FOLDS, labels.count(0), labels.count(1)))


def cross_validated(
    rows: list[dict[str, float]], labels: list[int], c: float, features: tuple[str, ...] = FEATURES
) -> list[float]:
    """Held-out probabilities: each fold scored by a calibrator fitted on the other folds."""
    from sklearn.model_selection import StratifiedKFold

    predictions = [0.0] * len(rows)
    folds = StratifiedKFold(n_splits=fold_count(labels), shuffle=True, random_state=0)
    for train, test in folds.split(rows, labels):
        model = fit_calibrator([rows[i] for i in train], [labels[i] for i in train], features, c)
        for i in test:
            predictions[i] = model.probability(rows[i])
    return predictions


def boosted_cv_auroc(rows: list[dict[str, float]], labels: list[int]) -> float | None:
    """Held-out ROC AUC of gradient boosting on the same features (the alternative considered)."""
    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    x = np.asarray([[r.get(f, math.nan) for f in FEATURES] for r in rows], dtype=np.float64)
    x = x[:, ~np.isnan(x).all(axis=0)]  # a signal never read (e.g. no probe yet) carries nothing
    model = HistGradientBoostingClassifier(max_depth=3, max_iter=100, learning_rate=0.05)
    folds = StratifiedKFold(n_splits=fold_count(labels), shuffle=True, random_state=0)
    predicted = cross_val_predict(model, x, np.asarray(labels), cv=folds, method="predict_proba")[:, 1]
    return roc_auc(labels, predicted.tolist())


def choose_threshold(records: list[QuestionRecord], scores: list[float]) -> dict[str, float]:
    """The highest `min_confidence` that still answers TARGET_ANSWERED % of answerable questions (most
    abstention on unanswerable ones under that constraint), from held-out confidences."""
    best = at_threshold(records, scores, 0.0)
    for threshold in sorted({round(s, 3) for s in scores if s > 0}):
        point = at_threshold(records, scores, threshold)
        if point["answered_answerable"] >= TARGET_ANSWERED:
            best = point
    return best


def recovery_rule(records: list[QuestionRecord]) -> dict[str, object]:
    """The judge and extractive-coverage thresholds for answering after a refusal: among refusals, the
    pair that recovers the most right extractive answers while answering at most 10 % of the refused
    unanswerable questions (the extractive answer of each refusal is the record's extractive one)."""
    refused = [r for r in records if answer_of(r).signals is not None and _refused(r)]
    if not refused:
        return {"judge_logit": 0.0, "coverage": 0.75, "note": "no refusals in the data: default kept"}
    best: tuple[int, dict[str, object]] | None = None
    for judge in (-2.0, -1.0, 0.0, 1.0, 2.0, 3.0):
        for coverage in (0.5, 0.6, 0.75, 0.9, 1.0):
            taken = [r for r in refused if _takes(r, judge, coverage)]
            right = sum(r.answerable and _extractive_right(r) for r in taken)
            wrong_unanswerable = sum(not r.answerable for r in taken)
            unanswerable = sum(not r.answerable for r in refused)
            if wrong_unanswerable > 0.1 * max(unanswerable, 1):
                continue
            entry = {
                "judge_logit": judge,
                "coverage": coverage,
                "refused": len(refused),
                "refused_answerable": sum(r.answerable for r in refused),
                "recovered": len(taken),
                "recovered_right": right,
                "recovered_unanswerable": wrong_unanswerable,
            }
            if right > (best[0] if best else 0):
                best = (right, entry)
    if best is None:
        return {
            "judge_logit": 0.0,
            "coverage": 0.75,
            "note": "no rule recovers a right answer here: default kept",
        }
    return best[1]


def _refused(record: QuestionRecord) -> bool:
    answer = answer_of(record)
    return answer.abstained or answer.recovered


def _takes(record: QuestionRecord, judge: float, coverage: float) -> bool:
    signals = answer_of(record).signals or {}
    value = signals.get("judge_logit", math.nan)
    return not math.isnan(value) and value > judge and signals.get("extractive_coverage", 0.0) >= coverage


def _extractive_right(record: QuestionRecord) -> bool:
    from rag.evaluation.scoring import normalize_answer

    text = normalize_answer(record.extractive.text)
    return any(normalize_answer(g) in text for g in record.answers if normalize_answer(g))


def fit_hidden_probe(
    records: list[QuestionRecord], components: int, c: float
) -> tuple[HiddenProbe | None, dict[str, float], dict[str, object]]:
    """The hidden-state probe, trained to tell answerable from unanswerable questions on every record
    that stored the generator's state (refusals included); its out-of-fold log-odds per record id (the
    calibrator's `hidden_probe` rows, so no record is scored by a probe that saw it); and its report."""
    from sklearn.model_selection import StratifiedKFold

    stored = [r for r in records if answer_of(r).hidden_state]
    labels = [int(r.answerable) for r in stored]
    if min(labels.count(0), labels.count(1)) < 5:
        return None, {}, {"note": f"{len(stored)} records with hidden states: too few to fit a probe"}
    states = [list(answer_of(r).hidden_state or ()) for r in stored]
    scores: dict[str, float] = {}
    folds = StratifiedKFold(n_splits=FOLDS, shuffle=True, random_state=0)
    for train, test in folds.split(states, labels):
        fold = fit_probe([states[i] for i in train], [labels[i] for i in train], components, c)
        scores.update({stored[i].id: fold.log_odds(states[i]) for i in test})
    held_out = [scores[r.id] for r in stored]
    rights = [is_right(r) for r in stored]
    report = {
        "label": "the question is answerable (SQuAD 2.0 gold)",
        "rows": len(stored),
        "answerable": sum(labels),
        "components": components,
        "c": c,
        "held_out_auroc_answerable": round(roc_auc(labels, held_out) or 0.0, 4),
        "held_out_auroc_right": round(roc_auc(rights, held_out) or 0.0, 4),
        "refusal_auroc_answerable": round(
            roc_auc(labels, [-(answer_of(r).signals or {}).get("refusal_log", 0.0) for r in stored]) or 0.0,
            4,
        ),
    }
    return fit_probe(states, labels, components, c), scores, report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=Path, default=ROOT / "evals/out/calibrator-dev/records.jsonl")
    parser.add_argument("--collect", type=int, default=0, help="First answer N development questions.")
    parser.add_argument(
        "--resume", action="store_true", help="With --collect: keep the records of a run cut short."
    )
    parser.add_argument("--index", type=Path, default=Path("/tmp/rag-squad2-dev-index"))
    parser.add_argument("--out", type=Path, default=DEFAULT_CALIBRATOR)
    parser.add_argument("--c", type=float, default=0.3, help="Inverse L2 strength of the logistic fit.")
    parser.add_argument(
        "--probe-components", type=int, default=32, help="PCA size of the hidden-state probe."
    )
    parser.add_argument("--probe-c", type=float, default=0.1, help="Inverse L2 strength of the probe.")
    parser.add_argument(
        "--features",
        default=",".join(FEATURES),
        help="Comma-separated signals the calibrator reads (default: all; fewer for a small collection).",
    )
    args = parser.parse_args()
    features = tuple(f.strip() for f in args.features.split(",") if f.strip())
    unknown = set(features) - set(FEATURES)
    if unknown:
        raise SystemExit(f"unknown signals {sorted(unknown)}; known: {', '.join(FEATURES)}")
    path = (
        collect(args.collect, args.records.parent, args.index, args.resume) if args.collect else args.records
    )
    if not path.exists() and path.with_name("records.partial.jsonl").exists():
        path = path.with_name("records.partial.jsonl")
    records = development_only([r for r in read_records(path) if r.generative is not None])
    probe, probe_scores, probe_report = fit_hidden_probe(records, args.probe_components, args.probe_c)
    answered = [r for r in records if r.generative.signals is not None and not r.generative.abstained]
    rows = [
        {**(answer_of(r).signals or {}), "hidden_probe": probe_scores.get(r.id, math.nan)} for r in answered
    ]
    labels = [is_right(r) for r in answered]
    if min(labels.count(0), labels.count(1)) < 2:
        raise SystemExit(f"{len(rows)} answered records with signals ({sum(labels)} right): too few to fit")
    held_out = cross_validated(rows, labels, args.c, features)
    by_id = {r.id: p for r, p in zip(answered, held_out, strict=True)}
    system_scores = [by_id.get(r.id, 0.0) for r in records]
    system_labels = [is_right(r) for r in records]
    operating = choose_threshold(records, system_scores)
    calibrator = replace(fit_calibrator(rows, labels, features, args.c), probe=probe)
    command = "python " + shlex.join(
        [
            str(Path(sys.argv[0]).relative_to(ROOT)) if sys.argv[0].startswith(str(ROOT)) else sys.argv[0],
            *sys.argv[1:],
        ]
    )
    calibrator.metadata.update(
        {
            "command": command,
            "data": {
                "dataset": "squad_v2_cs224n_half (SQuAD 2.0 dev, public half)",
                "articles": f"0:{DEV_ARTICLES} (development)",
                "records": str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path),
                "questions": len(records),
                "answerable": sum(r.answerable for r in records),
                "answered": len(rows),
                "right": sum(labels),
                "label": "answerable, answered, and token F1 or gold containment >= 0.5",
                "answer_style": "short",
            },
            "held_out": {
                "folds": fold_count(labels),
                "auroc_answered": round(roc_auc(labels, held_out) or 0.0, 4),
                "auroc_all_questions": round(roc_auc(system_labels, system_scores) or 0.0, 4),
                "gradient_boosting_auroc_answered": round(boosted_cv_auroc(rows, labels) or 0.0, 4),
                "refusal_only_auroc_answered": round(
                    roc_auc(labels, [-r["refusal_log"] for r in rows]) or 0.0, 4
                ),
            },
            "operating_point": {k: round(v, 4) for k, v in operating.items()},
            "signals": per_signal(rows, labels),
            "hidden_probe": probe_report,
            "costs_seconds": costs(rows),
            "recovery": recovery_rule(records),
        }
    )
    calibrator.save(args.out)
    print(
        json.dumps(
            {k: calibrator.metadata[k] for k in ("held_out", "hidden_probe", "operating_point", "recovery")},
            indent=2,
        )
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
