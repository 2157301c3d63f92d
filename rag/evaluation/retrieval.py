"""The retrieval benchmark: a BEIR or SQuAD dataset (see `datasets`), indexed with rag, scored per mode.

Documents are ranked by their best chunk (a chunk ranking, repeats dropped). Latency is the wall
time of one `Retriever.retrieve` call, query embedding included: at the depth the metrics need
(`latency_ms_*`), and again at the answering depth (`latency_k`, default 5: `latency_k_ms_*`, with
the calling thread's CPU time `latency_k_cpu_ms_p50`) over the first `latency_queries` queries.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings
from rag.evaluation.datasets import RetrievalDataset
from rag.metrics import mrr_at_k, ndcg_at_k, percentile, recall_at_k, unique_in_order
from rag.parsers.jsonl import corpus_id

if TYPE_CHECKING:
    from rag.assistant import Assistant

DEPTH = 150
"""Chunks retrieved per query: enough distinct documents for recall@100."""
LATENCY_K = 5
"""Passages per question when answering (the top_k default): the depth the latency target is for."""


def build_index(dataset: RetrievalDataset, settings: Settings, index_dir: Path | None) -> Assistant:
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
    assistant: Assistant,
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
        rankings[query_id] = unique_in_order([corpus_id(p.chunk.doc_id, p.source) for p in passages])
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
