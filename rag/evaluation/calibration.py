"""Choosing thresholds on development records, and the calibration file (evals/calibration.json) that
keeps each chosen set with its source."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.evaluation.records import QuestionRecord, read_records
from rag.evaluation.scoring import score_mode


def calibrate(
    records: list[QuestionRecord],
    min_answered: float = 88.0,
    mode: str = "strict",
    support_threshold: float = 0.05,
) -> dict[str, Any]:
    """The evidence gate, refusal threshold (and, for strict mode, support threshold) that abstain most on
    unanswerable questions while answering at least `min_answered`% of the answerable ones (a margin over
    the 85% target). Other modes keep `support_threshold`, which does not change what they answer."""
    gates = [-1.0, *_grid([r.evidence for r in records])]
    refusals = [*_grid([r.generative.refusal for r in records if r.generative is not None]), 1.0]
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


def calibrate_run(
    records_path: Path, min_answered: float, mode: str, support_threshold: float, command: str
) -> dict[str, Any]:
    """Calibrate on the records.jsonl of a `rag eval answers` run (its results.json beside it): the chosen
    values with the run's dataset, articles, question count, support checker and the `command`."""
    records = read_records(records_path)
    run = json.loads((records_path.parent / "results.json").read_text(encoding="utf-8"))
    return {
        **calibrate(records, min_answered, mode, support_threshold),
        "data": run.get("dataset"),
        "articles": run.get("articles"),
        "questions": len(records),
        "support_checker": run.get("support_checker"),
        "records": str(records_path),
        "command": command,
    }


def from_development_articles(entry: dict[str, Any]) -> bool:
    """Whether a calibration entry was chosen on development articles (`0:N`, see `split_articles`)."""
    return str(entry.get("articles", "")).startswith("0:")


def write_calibration(path: Path, key: str, entry: dict[str, Any]) -> None:
    """Store `entry` under `key` in the calibration file, keeping the other entries (the single
    `answers` entry of earlier versions is dropped: `answers_<mode>` replaced it)."""
    existing = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    existing.pop("answers", None)
    existing[key] = entry
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(existing, indent=2) + "\n", encoding="utf-8")
