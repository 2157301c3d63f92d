"""Ingest throughput of rag's embedder backends against LlamaIndex, in one run, and their retrieval quality.

    python evals/bench_ingest.py [--corpus ../shared/datasets/scifact_beir] [--limit N]
        [--backends torch,torch-fp32,onnx,onnx-int8] [--no-llamaindex] [--llamaindex-matched] [--quality]
        [--out evals/out]

For each rag backend (setting `embedder_backend`; `torch-fp32` and `torch-bf16` also set
`embedder_precision`, plain `torch` takes its default, auto): a fresh temporary index, the corpus ingested
with `Assistant.ingest` (parse, chunk, embed, store, atomic commit), documents/s and chunks/s. The ONNX
export is made (and cached) before the clock starts, as at a user's first use. Then LlamaIndex
(`pip install -e .[bench]`): `VectorStoreIndex.from_documents` with `HuggingFaceEmbedding` on the same
packaged MiniLM folder, its defaults otherwise, on the same documents (title and text, title as
metadata), timed the same way. Each rag row also gives its ratio to LlamaIndex's chunks/s and documents/s
(LlamaIndex's default splitter cuts 1024 tokens: one chunk per SciFact abstract, about half as many chunks
as rag's 200-token chunks, each read by MiniLM up to its 256 tokens). With `--llamaindex-matched`, a second
LlamaIndex row with its splitter at rag's chunk_tokens and chunk_overlap (like-length chunks).

Then the same chunk texts (the first `--encode-chunks` that ingest embedded) are encoded by each rag
backend in turn, `--encode-rounds` times: on a shared machine whose load drifts during the run, this
interleaved ratio is the one to read.

With `--quality` (the whole corpus only): BEIR SciFact test nDCG@10 of each rag backend over the
index it just built (dense and hybrid, `rag eval retrieval`'s machinery) and the query latency at the
answering depth (k=5, query embedding included, p50), each backend embedding its own questions; the torch
row also with its questions embedded by ONNX Runtime (`_onnx_queries`, and `_onnx-int8_queries`: rag's
default query_embedder_backend). Results go to evals/out/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def load_corpus(folder: Path, limit: int) -> list[dict[str, str]]:
    """The BEIR corpus records (`_id`, `title`, `text`), the first `limit` when given."""
    records = []
    with (folder / "corpus.jsonl").open() as lines:
        for line in lines:
            records.append(json.loads(line))
            if limit and len(records) == limit:
                break
    return records


CHUNK_TEXTS: list[str] = []
"""The chunk texts the first rag ingest embedded (title in front, as ingest embeds them)."""


PRECISIONS = {"fp32": "float32", "bf16": "bfloat16"}


def backend_settings(backend: str) -> dict[str, str]:
    """Settings of a `--backends` entry: an embedder_backend, and for torch an optional precision suffix
    (`torch-fp32`, `torch-bf16`; plain `torch` takes the default, auto)."""
    name, _, precision = backend.partition("-")
    if name == "torch" and precision in PRECISIONS:
        return {"embedder_backend": "torch", "embedder_precision": PRECISIONS[precision]}
    return {"embedder_backend": backend}


def encode_rounds(backends: list[str], texts: list[str], rounds: int, batch_size: int) -> dict[str, Any]:
    """Encode the same chunk texts with each backend in turn, `rounds` times (interleaved, so a change in
    the machine's load falls on every backend alike): chunks/s per backend, best round, and the ratio to
    the first backend."""
    from rag.config import Settings
    from rag.embeddings import load_embedder

    embedders = {}
    for b in backends:
        settings = Settings(**backend_settings(b))
        embedders[b] = load_embedder(
            settings.embedder,
            backend=settings.embedder_backend,
            cache_dir=settings.model_cache_dir,
            precision=settings.embedder_precision,
        )
    seconds: dict[str, list[float]] = {b: [] for b in backends}
    for _ in range(rounds):
        for backend, embedder in embedders.items():
            embedder.embed(texts[:batch_size], batch_size=batch_size)
            started = time.perf_counter()
            embedder.embed(texts, batch_size=batch_size)
            seconds[backend].append(time.perf_counter() - started)
    rates = {b: len(texts) / min(s) for b, s in seconds.items()}
    return {
        "chunks": len(texts),
        "rounds": rounds,
        "chunks_per_second": {b: round(r, 2) for b, r in rates.items()},
        "ratio_to_first": {b: round(r / rates[backends[0]], 2) for b, r in rates.items()},
    }


def rag_row(
    records: list[dict[str, str]], backend: str, quality: Path | None, scratch: Path
) -> dict[str, Any]:
    """Ingest the records with rag on `backend`; with `quality` (a BEIR folder), also score SciFact test."""
    from rag.assistant import Assistant
    from rag.config import Settings

    corpus = scratch / "corpus.jsonl"
    if not corpus.exists():
        corpus.write_text("".join(json.dumps(r) + "\n" for r in records))
    settings = Settings(
        index_dir=scratch / f"index-{backend}", query_embedder_backend="same", **backend_settings(backend)
    )
    assistant = Assistant(settings)
    if getattr(assistant.embedder, "bfloat16", False):
        backend = f"{settings.embedder_backend}, bfloat16"
    elif settings.embedder_backend == "torch":
        backend = "torch, float32"
    assistant.embedder.embed(["warm up"] * 4)  # load (and, the first time, export) before the clock starts
    started = time.perf_counter()
    report = assistant.ingest([corpus])
    seconds = time.perf_counter() - started
    if report.failed:
        sys.exit(f"ingest failed: {report.failed}")
    manifest = assistant.index().manifest
    if not CHUNK_TEXTS:
        from rag.lexical import lexical_text

        CHUNK_TEXTS.extend(
            lexical_text(title, text) if settings.embed_titles else text
            for _, title, text in assistant.index().catalog.titled_chunk_texts()
        )
    row: dict[str, Any] = {
        "system": f"rag ({backend})",
        "documents": manifest.documents,
        "chunks": manifest.chunks,
        "seconds": round(seconds, 2),
        "documents_per_second": round(manifest.documents / seconds, 2),
        "chunks_per_second": round(manifest.chunks / seconds, 2),
    }
    if quality is not None:
        from rag.embeddings import QueryRuntimeEmbedder, load_embedder
        from rag.evaluation.datasets import load_beir
        from rag.evaluation.retrieval import evaluate_mode

        dataset = load_beir(quality, "test")
        for mode in ("dense", "hybrid"):
            metrics, _ = evaluate_mode(assistant, dataset, mode, latency_queries=100)
            row[f"{mode}_ndcg@10"] = round(metrics["ndcg@10"], 4)
            row[f"{mode}_query_ms_p50"] = round(metrics["latency_k_ms_p50"], 2)
        if settings.embedder_backend == "torch":
            # this torch index, its questions embedded by ONNX Runtime (query_embedder_backend; onnx-int8 is
            # the default), with the ingest's embedder reused
            for queries in ("onnx", "onnx-int8"):
                split = Assistant(
                    settings.model_copy(update={"query_embedder_backend": queries}),
                    embedder=QueryRuntimeEmbedder(
                        assistant.embedder,
                        lambda queries=queries: load_embedder(
                            settings.embedder, backend=queries, cache_dir=settings.model_cache_dir
                        ),
                        queries,
                    ),
                )
                for mode in ("dense", "hybrid"):
                    metrics, _ = evaluate_mode(split, dataset, mode, latency_queries=100)
                    row[f"{mode}_ndcg@10_{queries}_queries"] = round(metrics["ndcg@10"], 4)
                    row[f"{mode}_query_ms_p50_{queries}_queries"] = round(metrics["latency_k_ms_p50"], 2)
    return row


def llamaindex_row(
    records: list[dict[str, str]], chunk_size: int = 0, chunk_overlap: int = 0
) -> dict[str, Any]:
    """LlamaIndex's defaults (SentenceSplitter, in-memory vector store) with the same MiniLM folder; with
    `chunk_size`, its SentenceSplitter cut to that many (tiktoken) tokens instead of its default 1024, so
    its chunks are about as long as rag's."""
    from llama_index.core import Document, Settings, VectorStoreIndex
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding

    from rag.config import PACKAGED_EMBEDDER
    from rag.embeddings import resolve_embedder_path

    embed_model = HuggingFaceEmbedding(model_name=resolve_embedder_path(PACKAGED_EMBEDDER), device="cpu")
    Settings.llm = None
    embed_model.get_text_embedding_batch(["warm up"] * 4)
    documents = [Document(text=r["text"], metadata={"title": r["title"]}, doc_id=r["_id"]) for r in records]
    started = time.perf_counter()
    transformations = (
        [SentenceSplitter(chunk_size=chunk_size, chunk_overlap=chunk_overlap)] if chunk_size else None
    )
    index = VectorStoreIndex.from_documents(
        documents, embed_model=embed_model, transformations=transformations
    )
    seconds = time.perf_counter() - started
    chunks = len(index.docstore.docs)
    splitter = f", SentenceSplitter chunk_size={chunk_size}" if chunk_size else ""
    return {
        "system": f"LlamaIndex (VectorStoreIndex.from_documents, HuggingFaceEmbedding{splitter})",
        "documents": len(records),
        "chunks": chunks,
        "seconds": round(seconds, 2),
        "documents_per_second": round(len(records) / seconds, 2),
        "chunks_per_second": round(chunks / seconds, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=Path("../shared/datasets/scifact_beir"))
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N documents (0: all).")
    parser.add_argument("--backends", default="torch,onnx,onnx-int8", help="rag embedder backends to time.")
    parser.add_argument("--no-llamaindex", action="store_true", help="Skip LlamaIndex.")
    parser.add_argument(
        "--llamaindex-matched",
        action="store_true",
        help="Also LlamaIndex with its splitter at rag's chunk_tokens and chunk_overlap (chunks about as "
        "long as rag's; its defaults cut 1024 tokens, one chunk per SciFact abstract).",
    )
    parser.add_argument(
        "--quality", action="store_true", help="Also SciFact test nDCG@10 and query p50 (whole corpus only)."
    )
    parser.add_argument(
        "--encode-chunks", type=int, default=256, help="Chunks encoded by each backend in turn (0: skip)."
    )
    parser.add_argument("--encode-rounds", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("evals/out"))
    args = parser.parse_args()
    if args.quality and args.limit:
        sys.exit("--quality scores the SciFact test queries against the whole corpus: drop --limit.")
    records = load_corpus(args.corpus, args.limit)
    load_before = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for backend in args.backends.split(","):
            rows.append(rag_row(records, backend, args.corpus if args.quality else None, Path(tmp)))
            print(json.dumps(rows[-1]), flush=True)
    if not args.no_llamaindex:
        rows.append(llamaindex_row(records))
        print(json.dumps(rows[-1]), flush=True)
        baseline = rows[-1]
        rag_rows = rows[:-1]
        if args.llamaindex_matched:
            from rag.config import Settings

            defaults = Settings()
            rows.append(llamaindex_row(records, defaults.chunk_tokens, defaults.chunk_overlap))
            print(json.dumps(rows[-1]), flush=True)
        for row in rag_rows:
            row["chunks_per_second_ratio_to_llamaindex"] = round(
                row["chunks_per_second"] / baseline["chunks_per_second"], 2
            )
            row["documents_per_second_ratio_to_llamaindex"] = round(
                row["documents_per_second"] / baseline["documents_per_second"], 2
            )
            if args.llamaindex_matched:
                row["chunks_per_second_ratio_to_llamaindex_matched"] = round(
                    row["chunks_per_second"] / rows[-1]["chunks_per_second"], 2
                )
    backends = args.backends.split(",")
    encode = None
    if args.encode_chunks and len(backends) > 1 and CHUNK_TEXTS:
        from rag.config import Settings

        texts = CHUNK_TEXTS[: args.encode_chunks]
        encode = encode_rounds(backends, texts, args.encode_rounds, Settings().embed_batch_size)
        print(json.dumps({"encode": encode}), flush=True)
    result = {
        "corpus": str(args.corpus),
        "encode_interleaved": encode,
        "documents": len(records),
        "rows": rows,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
