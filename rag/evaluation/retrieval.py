"""The retrieval benchmark: BEIR-layout or SQuAD data, indexed with rag, scored per retrieval mode.

Documents are ranked by their best chunk (a chunk ranking, repeats dropped). Latency is the wall
time of one `Retriever.retrieve` call, query embedding included: at the depth the metrics need
(`latency_ms_*`), and again at the answering depth (`latency_k`, default 5: `latency_k_ms_*`, with
the calling thread's CPU time `latency_k_cpu_ms_p50`) over the first `latency_queries` queries.
"""

from __future__ import annotations

import csv
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k, unique_in_order

DEPTH = 150
"""Chunks retrieved per query: enough distinct documents for recall@100."""
LATENCY_K = 5
"""Passages per question when answering (the top_k default): the depth the latency target is for."""


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


def load_squad(path: Path, articles: str = "0:32") -> RetrievalDataset:
    """SQuAD JSON as paragraph retrieval: each paragraph a document, its questions' only relevant one."""
    file = path / "dev-v1.1.json" if path.is_dir() else path
    data = json.loads(file.read_text(encoding="utf-8"))["data"]
    selection = parse_articles(articles)
    corpus: dict[str, tuple[str, str]] = {}
    queries: dict[str, str] = {}
    qrels: dict[str, dict[str, int]] = {}
    first = selection.start or 0
    for a, article in enumerate(data[selection], start=first):
        title = article["title"].replace("_", " ")
        for p, paragraph in enumerate(article["paragraphs"]):
            doc_id = f"a{a:02d}-p{p:03d}"
            corpus[doc_id] = (title, paragraph["context"])
            for qa in paragraph["qas"]:
                queries[qa["id"]] = qa["question"]
                qrels[qa["id"]] = {doc_id: 1}
    return RetrievalDataset(f"{file.parent.name}", f"articles {articles}", corpus, queries, qrels)


def build_index(dataset: RetrievalDataset, settings: Settings, index_dir: Path | None) -> Any:
    """An Assistant over an index of the corpus: the given folder when it holds one, else built there."""
    from rag.assistant import Assistant
    from rag.index import read_current

    target = index_dir or Path(tempfile.mkdtemp(prefix="rag-eval-")) / "index"
    assistant = Assistant(settings.model_copy(update={"index_dir": target}))
    if read_current(target) is None:
        with tempfile.TemporaryDirectory() as scratch:
            assistant.ingest([dataset.write_corpus(Path(scratch) / "corpus.jsonl")])
    return assistant


def evaluate_mode(
    assistant: Any,
    dataset: RetrievalDataset,
    mode: str,
    *,
    warmup: int = 5,
    latency_k: int = LATENCY_K,
    latency_queries: int = 200,
) -> tuple[dict[str, float], dict[str, list[str]]]:
    """Metrics and document rankings of one retrieval mode over every query, and latency at depth
    `latency_k` over the first `latency_queries` queries (skipped when either is 0)."""
    from rag.retrieval import Retriever

    settings = assistant.settings.model_copy(update={"retrieval_mode": mode})
    retriever = Retriever.from_settings(settings, assistant.embedder, assistant.index(), assistant.reranker)
    questions = list(dataset.queries.items())
    for _, text in questions[:warmup]:
        retriever.retrieve(text, DEPTH)
    latencies, rankings = [], {}
    for query_id, text in questions:
        started = time.perf_counter()
        passages = retriever.retrieve(text, DEPTH)
        latencies.append((time.perf_counter() - started) * 1000)
        rankings[query_id] = unique_in_order([p.chunk.doc_id for p in passages])
    metrics = score_rankings(rankings, dataset.qrels, latencies)
    if latency_k > 0 and latency_queries > 0:
        answering, cpu = [], []
        for _, text in questions[:latency_queries]:
            started, started_cpu = time.perf_counter(), time.thread_time()
            retriever.retrieve(text, latency_k)
            answering.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - started_cpu) * 1000)
        metrics["latency_k_ms_p50"] = percentile(answering, 50)
        metrics["latency_k_ms_p95"] = percentile(answering, 95)
        # CPU time of the calling thread (the query is embedded and searched on it): about what the
        # wall time would be on an idle core; the gap to the wall time is waiting for a busy CPU.
        metrics["latency_k_cpu_ms_p50"] = percentile(cpu, 50)
        metrics["latency_k_queries"] = float(len(answering))
    return metrics, rankings


def score_rankings(
    rankings: dict[str, list[str]], qrels: dict[str, dict[str, int]], latencies_ms: Sequence[float] = ()
) -> dict[str, float]:
    """Mean nDCG@10, recall@5/10/100, MRR@10 over the judged queries, and latency percentiles."""
    judged = [q for q in rankings if q in qrels]

    def mean(metric: Callable[[list[str], dict[str, int]], float]) -> float:
        return sum(metric(rankings[q], qrels[q]) for q in judged) / max(len(judged), 1)

    return {
        "ndcg@10": mean(lambda r, rel: ndcg_at_k(r, rel, 10)),
        "recall@5": mean(lambda r, rel: recall_at_k(r, rel, 5)),
        "recall@10": mean(lambda r, rel: recall_at_k(r, rel, 10)),
        "recall@100": mean(lambda r, rel: recall_at_k(r, rel, 100)),
        "mrr@10": mean(lambda r, rel: mrr_at_k(r, rel, 10)),
        "latency_ms_p50": percentile(list(latencies_ms), 50),
        "latency_ms_p95": percentile(list(latencies_ms), 95),
        "queries": float(len(judged)),
    }


def run_benchmark(
    dataset: RetrievalDataset,
    settings: Settings,
    modes: Sequence[str],
    *,
    index_dir: Path | None = None,
    progress: Callable[[str], None] = lambda _message: None,
    latency_k: int = LATENCY_K,
    latency_queries: int = 200,
) -> dict[str, Any]:
    """Index the corpus (or reuse `index_dir`) and score every mode; the results.json shape."""
    started = time.perf_counter()
    assistant = build_index(dataset, settings, index_dir)
    index_seconds = time.perf_counter() - started
    manifest = assistant.index().manifest
    progress(f"index: {manifest.documents} documents, {manifest.chunks} chunks ({index_seconds:.0f} s)")
    results: dict[str, Any] = {
        "dataset": dataset.name,
        "split": dataset.split,
        "documents": manifest.documents,
        "chunks": manifest.chunks,
        "vector_index": manifest.vector_index,
        "latency_k": latency_k,
        "settings": {
            name: getattr(settings, name)
            for name in (
                "embedder",
                "chunk_tokens",
                "chunk_overlap",
                "embed_titles",
                "rrf_k",
                "dense_weight",
                "bm25_weight",
                "fusion_candidates",
                "mmr_lambda",
                "reranker",
            )
        },
        "modes": {},
    }
    for mode in modes:
        metrics, _ = evaluate_mode(
            assistant, dataset, mode, latency_k=latency_k, latency_queries=latency_queries
        )
        results["modes"][mode] = {name: round(value, 4) for name, value in metrics.items()}
        at_k = ""
        if "latency_k_ms_p50" in metrics:
            at_k = f", at k={latency_k} p50 {metrics['latency_k_ms_p50']:.1f} ms"
        progress(f"{mode}: nDCG@10 {metrics['ndcg@10']:.4f}, p50 {metrics['latency_ms_p50']:.1f} ms{at_k}")
    return results


def write_report(results: dict[str, Any], out: Path, command: str = "") -> list[Path]:
    """results.json, report.md and a plot (nDCG@10 and latency per mode) in `out`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "results.json"
    json_path.write_text(json.dumps(results, indent=2))
    modes = list(results["modes"])
    figure, (quality, speed) = plt.subplots(1, 2, figsize=(9, 3.5))
    quality.bar(modes, [results["modes"][m]["ndcg@10"] for m in modes], color="#4477aa")
    quality.set_ylabel("nDCG@10")
    quality.set_ylim(0, 1)
    speed.bar(modes, [results["modes"][m]["latency_ms_p50"] for m in modes], color="#ee6677", label="p50")
    speed.scatter(modes, [results["modes"][m]["latency_ms_p95"] for m in modes], color="black", label="p95")
    speed.set_ylabel("latency per query (ms)")
    speed.legend()
    figure.suptitle(f"{results['dataset']} ({results['split']})")
    figure.tight_layout()
    plot_path = out / "retrieval.png"
    figure.savefig(plot_path, dpi=110)
    plt.close(figure)
    md_path = out / "report.md"
    md_path.write_text(
        markdown_table(results, command) + f"\n![nDCG@10 and latency per mode]({plot_path.name})\n"
    )
    return [json_path, md_path, plot_path]


def markdown_table(results: dict[str, Any], command: str = "") -> str:
    k = results.get("latency_k", LATENCY_K)
    header = (
        f"| mode | nDCG@10 | recall@5 | recall@10 | recall@100 | MRR@10 | p50 ms (depth {DEPTH}) | "
        f"p95 ms (depth {DEPTH}) | p50 ms (k={k}) | p95 ms (k={k}) | CPU p50 ms (k={k}) |\n"
    )
    header += "|---|---|---|---|---|---|---|---|---|---|---|\n"

    def at_k(m: dict[str, float], name: str) -> str:
        return f"{m[name]:.1f}" if name in m else "-"

    rows = "".join(
        f"| {mode} | {m['ndcg@10']:.4f} | {m['recall@5']:.4f} | {m['recall@10']:.4f} | "
        f"{m['recall@100']:.4f} | "
        f"{m['mrr@10']:.4f} | {m['latency_ms_p50']:.1f} | {m['latency_ms_p95']:.1f} | "
        f"{at_k(m, 'latency_k_ms_p50')} | {at_k(m, 'latency_k_ms_p95')} | "
        f"{at_k(m, 'latency_k_cpu_ms_p50')} |\n"
        for mode, m in results["modes"].items()
    )
    queries = int(next(iter(results["modes"].values()), {}).get("queries", 0))
    title = (
        f"## Retrieval: {results['dataset']} ({results['split']}), {results['documents']} documents, "
        f"{results['chunks']} chunks, {queries} queries\n\n"
    )
    ran = f"Command: `{command}`\n\n" if command else ""
    return title + ran + header + rows
