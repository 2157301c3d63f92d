"""Scale benchmark of the vector index: build time, memory, search latency and recall@10 vs exact search.

The vectors are synthetic (no corpus of a million chunks ships with the project): points around
2,000 cluster centres in a 48-dim latent space, projected to 384 dims with a little noise and
normalized, as sentence embeddings cluster by topic and have a low intrinsic dimension; queries
come from the same distribution. Uniform random vectors would understate approximate
search (they have no neighbourhood structure), so say which data a figure comes from when
quoting it. Layouts: exact flat inner product and IVF as rag builds them (rag.stores), and
FAISS HNSW for comparison (100k only by default: its build is slow on 2 cores).

`--spread` is the spread of points around their centre in the latent space (centres are standard
normal): at 0.5 the clusters barely touch, so a point's 10 nearest neighbours share its cluster and
IVF finds them easily (recall 1.0 at 1M with 2,000 lists); at 1.0 clusters overlap and neighbours
straddle them, a harder and likelier more realistic test of approximate search.

    OMP_WAIT_POLICY=PASSIVE python evals/scale.py [--sizes 10000,100000,1000000] [--spread 0.5]
        [--out evals/out/scale]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from rag.metrics import percentile  # noqa: E402
from rag.stores.faiss_store import FLAT, IVF, FaissVectorStore  # noqa: E402

DIM = 384
CENTRES = 2000
LATENT = 48


SPREAD = 0.5


def synthetic(
    n: int, rng: np.random.Generator, centres: np.ndarray, projection: np.ndarray, spread: float = SPREAD
) -> np.ndarray:
    """Unit vectors: latent points around cluster centres, projected to DIM dims, plus a little noise."""
    out = np.empty((n, DIM), dtype=np.float32)
    for start in range(0, n, 100_000):
        stop = min(n, start + 100_000)
        latent = centres[rng.integers(0, len(centres), stop - start)]
        latent = latent + rng.standard_normal(latent.shape, dtype=np.float32) * spread
        block = latent @ projection + rng.standard_normal((stop - start, DIM), dtype=np.float32) * 0.02
        out[start:stop] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def index_mb(index: faiss.Index) -> float:
    """Size of the index as FAISS writes it: the memory it holds, give or take a little."""
    return float(faiss.serialize_index(index).nbytes) / 2**20


def measure(
    name: str, search: Callable, queries: np.ndarray, truth: np.ndarray, build_s: float, memory_mb: float
) -> dict:
    """Latency of single-query searches and recall@10 against the exact neighbours."""
    for q in queries[:10]:
        search(q[None, :])
    latencies, hits = [], 0
    for q, true in zip(queries, truth, strict=True):
        started = time.perf_counter()
        _, ids = search(q[None, :])
        latencies.append((time.perf_counter() - started) * 1000)
        hits += len(set(ids[0].tolist()) & set(true.tolist()))
    return {
        "index": name,
        "build_s": round(build_s, 2),
        "memory_mb": round(memory_mb, 1),
        "latency_ms_p50": round(percentile(latencies, 50), 3),
        "latency_ms_p95": round(percentile(latencies, 95), 3),
        "recall@10": round(hits / (10 * len(queries)), 4),
    }


def run_size(
    n: int,
    rng: np.random.Generator,
    space: tuple[np.ndarray, np.ndarray, float],
    n_queries: int,
    hnsw: bool,
    nprobes: tuple[int, ...] = (16, 32, 64, 128),
) -> list[dict]:
    data = synthetic(n, rng, *space)
    queries = synthetic(n_queries, rng, *space)
    ids = np.arange(n, dtype=np.int64)
    rows: list[dict[str, Any]] = []

    started = time.perf_counter()
    flat = FaissVectorStore.build(FLAT, ids, data)
    build_s, memory = time.perf_counter() - started, index_mb(flat.index)
    _, truth = flat.search(queries, 10)
    rows.append(
        measure("flat (exact)", lambda q, store=flat: store.search(q, 10), queries, truth, build_s, memory)
    )
    del flat

    started = time.perf_counter()
    ivf = FaissVectorStore.build(IVF, ids, data)
    build_s, memory = time.perf_counter() - started, index_mb(ivf.index)
    lists = faiss.extract_index_ivf(ivf.index).nlist
    for nprobe in nprobes:
        ivf.nprobe = nprobe
        row = measure(
            f"ivf{lists} nprobe={nprobe}",
            lambda q, store=ivf: store.search(q, 10),
            queries,
            truth,
            build_s,
            memory,
        )
        rows.append(row)
    del ivf

    if hnsw:
        started = time.perf_counter()
        index = faiss.IndexHNSWFlat(DIM, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 40
        index.add(data)
        build_s, memory = time.perf_counter() - started, index_mb(index)
        for ef in (32, 64, 128):
            params = faiss.SearchParametersHNSW(efSearch=ef)
            row = measure(
                f"hnsw32 ef={ef}",
                lambda q, p=params: index.search(q, 10, params=p),
                queries,
                truth,
                build_s,
                memory,
            )
            rows.append(row)
        del index
    for row in rows:
        row["size"] = n
        print(json.dumps(row), flush=True)
    return rows


def write_report(rows: list[dict], out: Path, command: str, spread: float = SPREAD) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    summary = {"dim": DIM, "spread": spread, "threads": faiss.omp_get_max_threads(), "rows": rows}
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    figure, axis = plt.subplots(figsize=(6.5, 4))
    for name in sorted({r["index"] for r in rows}):
        points = sorted((r["size"], r["latency_ms_p50"]) for r in rows if r["index"] == name)
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=name)
    axis.set_xscale("log")
    axis.set_yscale("log")
    axis.set_xlabel("vectors (chunks)")
    axis.set_ylabel("search latency p50 (ms, one query)")
    axis.set_title(f"Vector search latency vs collection size ({DIM} dims, synthetic)")
    axis.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "scale.png", dpi=110)
    lines = [
        f"## Vector index at scale (synthetic clustered {DIM}-dim vectors, spread {spread}, "
        f"{faiss.omp_get_max_threads()} threads)\n",
        f"Command: `{command}`\n",
        "| vectors | index | build s | memory MB | p50 ms | p95 ms | recall@10 vs exact |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {r['size']:,} | {r['index']} | {r['build_s']} | {r['memory_mb']} | {r['latency_ms_p50']} | "
        f"{r['latency_ms_p95']} | {r['recall@10']} |"
        for r in rows
    ]
    lines.append("\n![latency vs size](scale.png)\n")
    (out / "report.md").write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--hnsw-max", type=int, default=100_000, help="Largest size that also builds HNSW.")
    parser.add_argument("--nprobes", default="16,32,64,128", help="IVF lists probed, one row each.")
    parser.add_argument("--spread", type=float, default=SPREAD, help="Latent spread around each centre.")
    parser.add_argument("--out", type=Path, default=Path("evals/out/scale"))
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((CENTRES, LATENT), dtype=np.float32)
    projection = rng.standard_normal((LATENT, DIM), dtype=np.float32) / np.sqrt(LATENT)
    rows: list[dict] = []
    for size in (int(s) for s in args.sizes.split(",")):
        rows += run_size(
            size,
            rng,
            (centres, projection, args.spread),
            args.queries,
            hnsw=size <= args.hnsw_max,
            nprobes=tuple(int(p) for p in args.nprobes.split(",")),
        )
    command = (
        f"python evals/scale.py --sizes {args.sizes} --queries {args.queries} --spread {args.spread} "
        f"--hnsw-max {args.hnsw_max} --nprobes {args.nprobes}"
    )
    write_report(rows, args.out, command, args.spread)


if __name__ == "__main__":
    main()
