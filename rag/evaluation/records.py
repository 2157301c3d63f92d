"""What the answer benchmark stores per question (records.jsonl): enough to score every mode afterwards.

The JSON keys are those of every earlier run, so old record files still load and score.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SentenceRecord:
    """One answer sentence: the paragraphs it cites (document ids), the citation numbers that named no
    given passage, its support score, and the support of each cited paragraph alone and of the others
    without it (ALCE's citation precision test; empty unless two or more are cited).

    It has what `GroundingPolicy` reads of a sentence, so the benchmark decides with the product's rule."""

    text: str
    citations: tuple[str, ...]
    invalid_citations: tuple[int, ...]
    support: float | None
    alone: tuple[float, ...] = ()
    without: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "citations": list(self.citations),
            "invalid": list(self.invalid_citations),
            "support": self.support,
            "alone": list(self.alone),
            "without": list(self.without),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SentenceRecord:
        return cls(
            data["text"],
            tuple(data["citations"]),
            tuple(data.get("invalid", ())),
            data.get("support"),
            tuple(data.get("alone", ())),
            tuple(data.get("without", ())),
        )


@dataclass(frozen=True)
class AnswerRecord:
    """One answer as stored, or as a benchmark mode shows it: text, abstention, sentences, latency and
    the model's refusal probability (None where it was not read)."""

    text: str
    abstained: bool
    sentences: tuple[SentenceRecord, ...]
    seconds: float
    refusal: float | None = None
    signals: dict[str, float] | None = None
    """The confidence signals (`rag/signals/`), so the calibrator refits from stored records."""
    confidence: float | None = None
    recovered: bool = False
    """Answered extractively after the model refused (a recovered false refusal)."""
    hidden_state: tuple[float, ...] | None = None
    """The generator's hidden state at the end of the prompt, so the probe refits from stored records."""

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "text": self.text,
            "abstained": self.abstained,
            "sentences": [s.to_dict() for s in self.sentences],
            "seconds": self.seconds,
            "refusal": self.refusal,
        }
        if self.signals is not None:
            data.update(signals=self.signals, confidence=self.confidence, recovered=self.recovered)
        if self.hidden_state is not None:
            data["hidden_state"] = [round(h, 4) for h in self.hidden_state]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AnswerRecord:
        return cls(
            data["text"],
            data["abstained"],
            tuple(SentenceRecord.from_dict(s) for s in data["sentences"]),
            data.get("seconds", 0.0),
            data.get("refusal"),
            data.get("signals"),
            data.get("confidence"),
            data.get("recovered", False),
            tuple(data["hidden_state"]) if data.get("hidden_state") else None,
        )


@dataclass(frozen=True)
class QuestionRecord:
    """One question with its gold answers and paragraph, the evidence score of its passages, and its
    extractive and (unless the run was extractive only) generative answers."""

    id: str
    question: str
    answers: tuple[str, ...]
    gold: str
    evidence: float
    extractive: AnswerRecord
    generative: AnswerRecord | None = None

    @property
    def answerable(self) -> bool:
        return bool(self.answers)

    def to_dict(self) -> dict[str, Any]:
        data = {
            "id": self.id,
            "question": self.question,
            "answers": list(self.answers),
            "gold": self.gold,
            "evidence": self.evidence,
            "extractive": self.extractive.to_dict(),
        }
        if self.generative is not None:
            data["generative"] = self.generative.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> QuestionRecord:
        generative = data.get("generative")
        return cls(
            data["id"],
            data["question"],
            tuple(data["answers"]),
            data["gold"],
            data["evidence"],
            AnswerRecord.from_dict(data["extractive"]),
            AnswerRecord.from_dict(generative) if generative is not None else None,
        )


def read_records(path: Path) -> list[QuestionRecord]:
    """The records of a records.jsonl file (one JSON object a line)."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [QuestionRecord.from_dict(json.loads(line)) for line in lines if line.strip()]


def write_records(path: Path, records: Iterable[QuestionRecord], *, append: bool = False) -> None:
    """Write (or append) records as JSON lines."""
    with open(path, "a" if append else "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record.to_dict(), ensure_ascii=False) + "\n")
