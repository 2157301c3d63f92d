"""Choose `attribution_min_support` on stored development answers: how often the gold paragraph is cited.

    python evals/calibrate_attribution.py --records evals/out/answers-squad1-dev80/records.jsonl \
        --index /tmp/squad1-dev-index [--records ... --index ...]

Reads `rag eval answers` records of development articles (short answers) and the index that run built.
For every answered sentence it re-runs retrieval (deterministic: the same passages the answer saw) and
scores the sentence, read with its question, against each passage with the support checker, once. It
then runs the product's `rag.grounding.attribute_citations` on those scores for each threshold: a
sentence whose citations score below the threshold gets the best-scoring passage when that one reaches
the threshold and beats them. Prints, per threshold, the share of answered answerable questions citing
their gold paragraph and how many citations were added (and how many of those are not the gold one).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

THRESHOLDS = (0.6, 0.5, 0.4, 0.3, 0.2, 0.1)


def sentence_scores(records: Path, index: Path) -> list[tuple[bool, str, list]]:
    """Per answered record: answerable, gold paragraph, and per sentence (citations, support, scores by
    retrieved paragraph)."""
    from rag.assistant import Assistant
    from rag.config import Settings
    from rag.evaluation.records import read_records
    from rag.grounding import claim_of
    from rag.parsers.jsonl import corpus_id

    assistant = Assistant(Settings(index_dir=index, answer_style="short"))
    checker = assistant.support_checker
    rows = []
    for record in read_records(records):
        answer = record.generative
        if answer is None or answer.abstained or not answer.sentences:
            continue
        passages = assistant.retrieve(record.question)
        ids = [corpus_id(p.chunk.doc_id, p.source) for p in passages]
        sentences = []
        for s in answer.sentences:
            claim = claim_of(s.text, record.question)
            scores = checker.score([claim] * len(passages), [[p.chunk.text] for p in passages])
            sentences.append((list(s.citations), s.support or 0.0, dict(zip(ids, scores, strict=True))))
        rows.append((record.answerable, record.gold, sentences))
    return rows


class StoredScores:
    """A support checker answering from scores computed once: evidence texts are paragraph ids, so the
    product's own `attribute_citations` can be replayed for every threshold without scoring again."""

    name = "stored"

    def __init__(self, scores: dict[str, float]) -> None:
        self.scores = scores

    def score(self, claims: list[str], evidence: list[list[str]]) -> list[float]:
        return [max((self.scores.get(doc, 0.0) for doc in texts), default=0.0) for texts in evidence]


def replay(rows: list[tuple[bool, str, list]], threshold: float) -> tuple[int, int, int, int]:
    """Gold cited, answered answerable, citations added, added ones that are not the gold paragraph."""
    from rag.grounding import attribute_citations
    from rag.types import AnswerSentence, Chunk, Passage

    hits = answered = added = not_gold = 0
    for answerable, gold, sentences in rows:
        cited: set[str] = set()
        for citations, support, scores in sentences:
            ids = list(scores) + [doc for doc in citations if doc not in scores]
            passages = [Passage(Chunk(doc, doc, 0, len(doc)), 0.0, doc, doc) for doc in ids]
            numbers = tuple(ids.index(doc) + 1 for doc in citations)
            sentence = AnswerSentence("", numbers, support=support if numbers else None)
            (result,) = attribute_citations([sentence], passages, StoredScores(scores), threshold)
            if result.citations != numbers:
                new = ids[result.citations[-1] - 1]
                added += 1
                not_gold += new != gold
            cited |= {ids[n - 1] for n in result.citations}
        if answerable:
            answered += 1
            hits += gold in cited
    return hits, answered, added, not_gold


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=Path, action="append", required=True)
    parser.add_argument("--index", type=Path, action="append", required=True)
    args = parser.parse_args()
    if len(args.records) != len(args.index):
        parser.error("give one --index per --records")
    for records, index in zip(args.records, args.index, strict=True):
        rows = sentence_scores(records, index)
        print(f"{records}\n| threshold | gold cited | added citations (not gold) |\n|---|---|---|")
        for threshold in THRESHOLDS:
            hits, answered, added, not_gold = replay(rows, threshold)
            rate = 100 * hits / max(answered, 1)
            print(f"| {threshold} | {rate:.1f} % ({hits}/{answered}) | {added} ({not_gold}) |")


if __name__ == "__main__":
    main()
