"""Ingest throughput against plain `SentenceTransformer.encode` of the same chunk texts, in one run.

    python evals/bench_ingest.py --corpus ../shared/datasets/scifact_beir/corpus.jsonl [--limit N]

Ingests the corpus into a fresh temporary index with `Assistant.ingest` (parse, chunk, embed, store,
atomic commit), then encodes exactly the chunk texts it stored with the same model and batch size,
and reports documents/s, chunks/s and the ratio encode_seconds / ingest_seconds (1.0: ingest costs
nothing beyond embedding). Results go to evals/out/ingest.json.
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

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--corpus", type=Path, default=Path("../shared/datasets/scifact_beir/corpus.jsonl"))
    parser.add_argument("--limit", type=int, default=0, help="Use only the first N documents (0: all).")
    parser.add_argument("--out", type=Path, default=Path("evals/out"))
    args = parser.parse_args()

    from rag.assistant import Assistant
    from rag.config import Settings
    from rag.embeddings import SentenceTransformerEmbedder
    from rag.lexical import lexical_text

    with tempfile.TemporaryDirectory() as tmp:
        corpus = args.corpus
        if args.limit:
            corpus = Path(tmp) / "corpus.jsonl"
            with args.corpus.open() as src, corpus.open("w") as dst:
                for _, line in zip(range(args.limit), src):
                    dst.write(line)
        settings = Settings(index_dir=Path(tmp) / "index")
        embedder = SentenceTransformerEmbedder(settings.embedder)
        assistant = Assistant(settings, embedder=embedder)
        embedder.embed(["warm up"] * 4)

        started = time.perf_counter()
        report = assistant.ingest([corpus])
        ingest_seconds = time.perf_counter() - started
        if report.failed:
            sys.exit(f"ingest failed: {report.failed}")
        index = assistant.index()
        # Exactly what ingest embedded: each chunk with its document title in front (setting embed_titles).
        texts = [
            lexical_text(title, text) if settings.embed_titles else text
            for _, title, text in index.catalog.titled_chunk_texts()
        ]
        documents = index.manifest.documents

        started = time.perf_counter()
        embedder.model.encode(texts, batch_size=settings.embed_batch_size, normalize_embeddings=True)
        encode_seconds = time.perf_counter() - started

    result = {
        "corpus": str(args.corpus),
        "documents": documents,
        "chunks": len(texts),
        "ingest_seconds": round(ingest_seconds, 2),
        "encode_seconds": round(encode_seconds, 2),
        "documents_per_second": round(documents / ingest_seconds, 2),
        "chunks_per_second": round(len(texts) / ingest_seconds, 2),
        "encode_chunks_per_second": round(len(texts) / encode_seconds, 2),
        "ratio_to_plain_encode": round(encode_seconds / ingest_seconds, 3),
        "batch_size": settings.embed_batch_size,
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ingest.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
