"""Scale-out engines against the in-process defaults, in one run on the same machine (ratios):

1. ingest of SciFact with `--engine ray` (`workers` local Ray workers) vs the in-process Ingestor, both into
   FAISS, from the same corpus cut into `--shards` JSONL files (Ray parallelizes across files); the two
   indexes must hold the same chunks (ids, offsets) and vectors within float tolerance;
2. SciFact test nDCG@10 and query latency with the vectors in Milvus Lite vs FAISS: the Milvus index is the
   in-process index with its vectors copied into Milvus (the same embeddings), scored by the
   `rag eval retrieval` machinery (rag/evaluation/retrieval.py).

    python evals/bench_scale_out.py [--docs N] [--shards 8] [--workers 2] [--out evals/out/scale-out]

`--docs N` keeps the first N corpus documents plus every document the test queries judge relevant (the
full corpus: 0); the README's "Deployment at scale" section gives the figures and the command.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from rag.assistant import Assistant
from rag.config import Settings
from rag.evaluation.datasets import RetrievalDataset, load_beir
from rag.evaluation.retrieval import evaluate_mode
from rag.index import MANIFEST_FILE, Index, read_current, read_manifest
from rag.ray_ingest import RayIngestor, ray_session
from rag.stores import FAISS_FILE, FaissVectorStore, close_milvus_clients, new_vector_store, vectors_file

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "scifact_beir"


def subset(dataset: RetrievalDataset, docs: int) -> RetrievalDataset:
    """The first `docs` documents and every judged one (all documents when `docs` is 0)."""
    if docs <= 0:
        return dataset
    judged = {doc for relevant in dataset.qrels.values() for doc in relevant}
    keep = [d for n, d in enumerate(dataset.corpus) if n < docs or d in judged]
    corpus = {d: dataset.corpus[d] for d in keep}
    return RetrievalDataset(dataset.name, dataset.split, corpus, dataset.queries, dataset.qrels)


def write_shards(dataset: RetrievalDataset, folder: Path, shards: int) -> Path:
    """The corpus as `shards` BEIR JSONL files of about equal size."""
    folder.mkdir(parents=True)
    ids = list(dataset.corpus)
    for n in range(shards):
        part = {d: dataset.corpus[d] for d in ids[n::shards]}
        RetrievalDataset(dataset.name, dataset.split, part, {}).write_corpus(folder / f"corpus-{n:02d}.jsonl")
    return folder


def chunk_rows(index: Index) -> list[tuple]:
    return [
        tuple(r) for r in index.catalog.db.execute("SELECT id, doc_id, start, end FROM chunks ORDER BY id")
    ]


def copy_into_milvus(source: Path, target: Path) -> None:
    """A copy of the index at `source` whose vectors (the same ones) live in Milvus Lite inside `target`."""
    live = read_current(source)
    assert live is not None
    target.mkdir(parents=True)
    folder = target / live.name
    shutil.copytree(live, folder)
    manifest = read_manifest(source, live)
    faiss_store = FaissVectorStore.load(folder / FAISS_FILE)
    store = new_vector_store(target, manifest.dimension, "milvus")
    ids = faiss_store.ids()
    store.add(ids, faiss_store.vectors(ids))
    store.save(folder / vectors_file(store))
    (folder / FAISS_FILE).unlink()
    manifest.vector_store, manifest.vector_index = "milvus", store.kind
    (folder / MANIFEST_FILE).write_text(json.dumps(asdict(manifest), indent=2))
    (target / "CURRENT").write_text(live.name + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--scifact", type=Path, default=SCIFACT)
    parser.add_argument("--docs", type=int, default=0, help="first N documents plus the judged ones (0: all)")
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("evals/out/scale-out"))
    args = parser.parse_args()

    dataset = subset(load_beir(args.scifact, "test"), args.docs)
    scratch = Path(tempfile.mkdtemp(prefix="rag-scale-out-"))
    corpus = write_shards(dataset, scratch / "corpus", args.shards)
    results: dict = {
        "documents": len(dataset.corpus),
        "queries": len(dataset.limited(None).queries),
        "shards": args.shards,
        "workers": args.workers,
        "load_average_start": os.getloadavg(),
    }
    local = Assistant(Settings(index_dir=scratch / "in-process"))
    embedder = local.embedder  # loaded before timing: both engines start with their models to load
    started = time.perf_counter()
    report = local.ingest([corpus])
    results["in_process_seconds"] = time.perf_counter() - started
    results["chunks"] = report.chunks_added
    print(f"in-process: {report.chunks_added} chunks in {results['in_process_seconds']:.1f} s", flush=True)

    remote = Assistant(Settings(index_dir=scratch / "ray"), embedder=embedder)
    started = time.perf_counter()
    with ray_session(args.workers):
        results["ray_start_seconds"] = time.perf_counter() - started
        started = time.perf_counter()
        ray_report = RayIngestor.for_assistant(remote, args.workers).ingest([corpus])
        results["ray_seconds"] = time.perf_counter() - started
    results["ray_over_in_process_speed"] = results["in_process_seconds"] / results["ray_seconds"]
    same_chunks = chunk_rows(local.index()) == chunk_rows(remote.index())
    ids = np.asarray(local.index().catalog.chunk_ids(), dtype=np.int64)
    difference = np.nan
    if same_chunks:
        difference = np.abs(remote.index().vectors.vectors(ids) - local.index().vectors.vectors(ids)).max()
    results.update(same_chunks=same_chunks, max_vector_difference=float(difference))
    results["ray_failed"] = len(ray_report.failed)
    print(
        f"ray: {ray_report.chunks_added} chunks in {results['ray_seconds']:.1f} s "
        f"(+{results['ray_start_seconds']:.1f} s to start Ray); "
        f"speed ratio {results['ray_over_in_process_speed']:.2f}; same chunks {same_chunks}, "
        f"max vector difference {difference:.2e}",
        flush=True,
    )

    copy_into_milvus(scratch / "in-process", scratch / "milvus")
    milvus = Assistant(Settings(index_dir=scratch / "milvus"), embedder=embedder)
    judged = dataset.limited(None)
    for mode in ("dense", "hybrid"):
        for name, assistant in (("faiss", local), ("milvus", milvus)):
            metrics, _ = evaluate_mode(assistant, judged, mode)
            results[f"{name}_{mode}"] = metrics
            print(
                f"{name} {mode}: nDCG@10 {metrics['ndcg@10']:.4f}, p50 {metrics['latency_ms_p50']:.1f} ms "
                f"(depth 150), {metrics['latency_k_ms_p50']:.1f} ms (k=5)",
                flush=True,
            )
        results[f"ndcg_difference_{mode}"] = abs(
            results[f"milvus_{mode}"]["ndcg@10"] - results[f"faiss_{mode}"]["ndcg@10"]
        )
    close_milvus_clients()
    results["load_average_end"] = os.getloadavg()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(results, indent=2, default=float))
    shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps({k: v for k, v in results.items() if not isinstance(v, dict)}, indent=2, default=float))


if __name__ == "__main__":
    main()
