"""`rag ask` speed on questions about documents/, against raw llama-cpp-python on the same prompts.

    python evals/bench_ask.py [--index index/default] [--out evals/out]

For each question: time to first token, total time and decode tokens/s through the Assistant
(retrieval, prompt, generation, citations), then decode tokens/s of a separate, raw `llama_cpp.Llama`
on the same model file, the same messages and the same thread count (a separate instance, so no
prompt cache is shared). Results go to evals/out/ask.json. Index documents/ first (`rag ingest documents`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

QUESTIONS = [
    "Which port does rag serve use by default?",
    "How do I remove a document from the index?",
    "Does rag send my documents anywhere?",
    "What are the known limitations of version 0.1.0?",
    "Which file formats can rag ingest?",
]


def raw_llama_decode(
    model_path: Path, threads: int, context: int, messages: list[dict], max_tokens: int
) -> dict:
    from llama_cpp import Llama

    llm = Llama(
        model_path=str(model_path),
        n_threads=threads,
        n_threads_batch=threads,
        n_ctx=context,
        verbose=False,
        chat_format="chat_template.default",
    )
    started = time.perf_counter()
    first = None
    pieces = []
    for chunk in llm.create_chat_completion(messages, max_tokens=max_tokens, temperature=0.0, stream=True):
        text = chunk["choices"][0]["delta"].get("content")
        if text:
            first = first or time.perf_counter()
            pieces.append(text)
    total = time.perf_counter() - started
    tokens = len(llm.tokenize("".join(pieces).encode(), add_bos=False))
    del llm
    return {
        "first_token_seconds": (first or started) - started,
        "total_seconds": total,
        "completion_tokens": tokens,
        "decode_tokens_per_second": (tokens - 1) / (total - ((first or started) - started))
        if tokens > 1
        else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, default=Path("index/default"))
    parser.add_argument("--out", type=Path, default=Path("evals/out"))
    args = parser.parse_args()

    from rag.assistant import Assistant
    from rag.config import Settings
    from rag.generation.packaged import packaged_gguf_path
    from rag.grounding import build_messages

    settings = Settings(index_dir=args.index)
    assistant = Assistant(settings)
    assistant.retrieve("warm up")
    assistant.generator  # noqa: B018  (load before timing)
    rows = []
    for question in QUESTIONS:
        answer = assistant.ask(question)
        t = answer.timings
        row = {
            "question": question,
            "abstained": answer.abstained,
            "citations": [c.n for c in answer.citations],
            "first_token_seconds": round(t.get("first_token_seconds", 0.0), 3),
            "total_seconds": round(t["total_seconds"], 3),
            "prompt_tokens": t.get("prompt_tokens", 0),
            "completion_tokens": t.get("completion_tokens", 0),
            "decode_tokens_per_second": round(t.get("decode_tokens_per_second", 0.0), 2),
        }
        if not answer.abstained or t.get("completion_tokens"):
            messages = build_messages(question, answer.passages)
            raw = raw_llama_decode(
                packaged_gguf_path(settings.model_cache_dir),
                settings.threads,
                settings.context_tokens,
                messages,
                settings.max_answer_tokens,
            )
            row["raw_llama_decode_tokens_per_second"] = round(raw["decode_tokens_per_second"], 2)
            row["raw_llama_first_token_seconds"] = round(raw["first_token_seconds"], 3)
        rows.append(row)
        print(json.dumps(row), flush=True)

    generated = [r for r in rows if "raw_llama_decode_tokens_per_second" in r]
    summary = {
        "questions": len(rows),
        "median_first_token_seconds": statistics.median(r["first_token_seconds"] for r in generated),
        "median_total_seconds": statistics.median(r["total_seconds"] for r in rows),
        "median_decode_tokens_per_second": statistics.median(
            r["decode_tokens_per_second"] for r in generated
        ),
        "median_raw_llama_decode_tokens_per_second": statistics.median(
            r["raw_llama_decode_tokens_per_second"] for r in generated
        ),
        "threads": settings.threads,
    }
    summary["decode_ratio_to_raw_llama"] = round(
        summary["median_decode_tokens_per_second"] / summary["median_raw_llama_decode_tokens_per_second"], 3
    )
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ask.json").write_text(json.dumps({"summary": summary, "questions": rows}, indent=2))
    print(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
