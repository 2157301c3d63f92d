"""Benchmark datasets: BEIR folders and SQuAD 1.1 / 2.0 files, read as a corpus with its questions."""

from __future__ import annotations

import csv
import json
import random
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class RetrievalDataset:
    """A corpus {id: (title, text)}, queries {id: text} and graded relevance {query id: {doc id: gain}}."""

    name: str
    split: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]] = field(default_factory=dict)

    def limited(self, limit: int | None) -> RetrievalDataset:
        """The first `limit` judged queries (all when None)."""
        ids = [q for q in self.queries if q in self.qrels][: limit or None]
        return RetrievalDataset(
            self.name,
            self.split,
            self.corpus,
            {q: self.queries[q] for q in ids},
            {q: self.qrels[q] for q in ids},
        )

    def write_corpus(self, path: Path) -> Path:
        """The corpus as BEIR `corpus.jsonl`, which `rag ingest` reads."""
        with open(path, "w", encoding="utf-8") as handle:
            for doc_id, (title, text) in self.corpus.items():
                handle.write(
                    json.dumps({"_id": doc_id, "title": title, "text": text}, ensure_ascii=False) + "\n"
                )
        return path


def load_beir(folder: Path, split: str = "test") -> RetrievalDataset:
    """A BEIR dataset folder: corpus.jsonl, queries.jsonl and qrels/<split>.tsv."""
    corpus = {}
    with open(folder / "corpus.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                corpus[str(record["_id"])] = (record.get("title") or "", record.get("text") or "")
    queries = {}
    with open(folder / "queries.jsonl", encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                record = json.loads(line)
                queries[str(record["_id"])] = record["text"]
    qrels: dict[str, dict[str, int]] = {}
    with open(folder / "qrels" / f"{split}.tsv", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
    judged = {q: t for q, t in queries.items() if q in qrels}
    return RetrievalDataset(folder.name, split, corpus, judged, qrels)


def parse_articles(selection: str) -> slice:
    """`0:32` -> slice(0, 32); `5` -> the sixth article only."""
    if ":" in selection:
        start, _, stop = selection.partition(":")
        return slice(int(start) if start else None, int(stop) if stop else None)
    return slice(int(selection), int(selection) + 1)


@dataclass
class SquadQuestion:
    """One SQuAD question: its gold answers (none when unanswerable, SQuAD 2.0) and its paragraph."""

    id: str
    question: str
    answers: list[str]
    gold_doc: str

    @property
    def answerable(self) -> bool:
        return bool(self.answers)


@dataclass
class SquadArticles:
    """Selected SQuAD articles: each paragraph a document (`aNN-pNNN`), and every question about them."""

    name: str
    articles: str
    corpus: dict[str, tuple[str, str]]
    questions: list[SquadQuestion]

    def retrieval(self) -> RetrievalDataset:
        """Paragraph retrieval: every question's only relevant document is its paragraph."""
        return RetrievalDataset(
            self.name,
            f"articles {self.articles}",
            self.corpus,
            {q.id: q.question for q in self.questions},
            {q.id: {q.gold_doc: 1} for q in self.questions},
        )

    def sample(self, limit: int | None, seed: int = 0) -> list[SquadQuestion]:
        """A seeded sample of `limit` questions (all of them when None or more than there are)."""
        if limit is None or limit >= len(self.questions):
            return list(self.questions)
        return random.Random(seed).sample(self.questions, limit)


def squad_file(path: Path) -> Path:
    """The SQuAD JSON file itself, or the one (dev) file in a folder (`dev-v1.1.json`, `dev-v2.0*.json`)."""
    if not path.is_dir():
        return path
    files = sorted(path.glob("*.json"))
    dev = [f for f in files if f.name.startswith("dev")]
    if not (dev or files):
        raise ValueError(f"no SQuAD .json file in {path}")
    return (dev or files)[0]


def load_squad(path: Path, articles: str) -> SquadArticles:
    """The selected articles of a SQuAD 1.1 or 2.0 file (or of the folder holding one, see `squad_file`)."""
    file = squad_file(path)
    data = json.loads(file.read_text(encoding="utf-8"))["data"]
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
    return SquadArticles(file.parent.name, articles, corpus, questions)


def split_articles(path: Path, split: str) -> str:
    """The development (`dev`) or reserved articles, `A:B`, of the SQuAD files in
    ../shared/datasets/README.md: 32 of 48 (v1.1), 11 of 16 (v2.0 half), else the first two thirds."""
    count = len(json.loads(squad_file(path).read_text(encoding="utf-8"))["data"])
    dev = 32 if count == 48 else 11 if count == 16 else count * 2 // 3
    return f"0:{dev}" if split == "dev" else f"{dev}:{count}"
