"""Answer latency through an OpenAI-compatible server against in-process llama.cpp, same GGUF, same run.

    python evals/bench_openai_backend.py [--index index/default] [--out evals/out] [--rounds 1] [--limit 5]

Starts `python -m llama_cpp.server` on the packaged GGUF (same threads and context as the in-process model),
then asks the questions of evals/bench_ask.py about documents/ through two Assistants on the same index and
embedder: `generator_backend="llama_cpp"` and `generator_backend="openai"` (token scores on, through the
packaged model's chat template). The two alternate question by question, so load drift hits both alike.
Reports time to first token and total time per answer (medians) and their ratios openai / in-process.
Results go to <out>/openai_backend.json. Index documents/ first (`rag ingest documents`).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_ask import QUESTIONS  # noqa: E402

MEASURES = ("first_token_seconds", "total_seconds", "refusal_check_seconds")


def start_server(gguf: Path, threads: int, context: int) -> tuple[subprocess.Popen, str]:
    """llama-cpp-python's OpenAI-compatible server on a free local port, once it answers."""
    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1"]
    command += ["--port", str(port), "--n_ctx", str(context), "--n_threads", str(threads)]
    command += ["--n_threads_batch", str(threads)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if httpx.get(f"{url}/models", timeout=2).status_code == 200:
                return process, url
        except httpx.TransportError:
            time.sleep(0.5)
    process.kill()
    raise SystemExit(f"llama_cpp.server did not start (exit code {process.poll()})")


def answer_row(assistant, question: str) -> dict:  # noqa: ANN001 (an Assistant)
    answer = assistant.ask(question)
    row = {name: round(answer.timings.get(name, 0.0), 3) for name in MEASURES}
    row["abstained"] = answer.abstained
    row["citations"] = [c.n for c in answer.citations]
    row["refusal_probability"] = answer.refusal_probability
    row["completion_tokens"] = answer.timings.get("completion_tokens", 0)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, default=Path("index/default"))
    parser.add_argument("--out", type=Path, default=Path("evals/out"))
    parser.add_argument("--rounds", type=int, default=1, help="Times each question is asked per backend.")
    parser.add_argument("--limit", type=int, default=len(QUESTIONS), help="Ask only the first N questions.")
    args = parser.parse_args()

    from rag.assistant import Assistant
    from rag.config import PACKAGED_GENERATOR, Settings
    from rag.generation.packaged import packaged_gguf_path

    local_settings = Settings(index_dir=args.index)
    gguf = packaged_gguf_path(local_settings.model_cache_dir)
    process, url = start_server(gguf, local_settings.threads, local_settings.context_tokens)
    try:
        server_settings = local_settings.model_copy(
            update={
                "generator_backend": "openai",
                "openai_base_url": url,
                "openai_template_gguf": PACKAGED_GENERATOR,
            }
        )
        local = Assistant(local_settings)
        served = Assistant(server_settings, embedder=local.embedder)
        local.retrieve("warm up")
        served.retrieve("warm up")
        local.ask(QUESTIONS[0])  # both models loaded and warm before timing
        served.ask(QUESTIONS[0])
        rows = []
        for _ in range(args.rounds):
            for question in QUESTIONS[: args.limit]:
                row = {"question": question, "in_process": answer_row(local, question)}
                row["openai_server"] = answer_row(served, question)
                rows.append(row)
                print(json.dumps(row), flush=True)
    finally:
        process.terminate()
        process.wait(timeout=30)

    answered = [r for r in rows if not r["in_process"]["abstained"] and not r["openai_server"]["abstained"]]
    summary: dict[str, object] = {
        "questions": len(rows),
        "answered_by_both": len(answered),
        "same_abstentions": sum(
            r["in_process"]["abstained"] == r["openai_server"]["abstained"] for r in rows
        ),
        "threads": local_settings.threads,
        "load_average": os.getloadavg(),
    }
    for name in MEASURES:
        measured = answered if name == "first_token_seconds" else rows
        if not measured:
            continue
        medians = {
            side: statistics.median(r[side][name] for r in measured)
            for side in ("in_process", "openai_server")
        }
        summary[name] = medians
        if medians["in_process"]:
            summary[f"{name}_ratio"] = round(medians["openai_server"] / medians["in_process"], 3)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "openai_backend.json").write_text(json.dumps({"summary": summary, "rows": rows}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
