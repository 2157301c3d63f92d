"""Answer speed and quality of rag's prompt layouts side by side: today's full prompt against evidence
compression (setting prompt_passage_tokens) and the passage KV cache (setting passage_cache), in one run,
on the same questions.

    python evals/bench_ask.py [--index index/default] [--budgets 0,160,96:k3]
        [--cache [--cache-mb 2048] [--cache-recompute 0,16]] [--squad ../shared/datasets/squad_v1.1]
        [--squad-questions 50] [--squad-index index/squad-dev32] [--raw-llama] [--out evals/out]

Two question sets: the five questions about `documents/` (index them first: `rag ingest documents`),
and a seeded sample of SQuAD v1.1 development questions (articles 0:32; the paragraphs indexed once into
`--squad-index`, reused after), answered in the short style SQuAD scores. Every question is asked under
every budget in turn (0: the full prompt, the baseline), one loaded model shared by all, so load on the
machine falls on every row alike: read the ratios. Per budget: median time to first token and total time,
median prompt tokens, and on SQuAD the token F1 and the gold-paragraph citation rate over all sampled
questions (an abstention scores 0 on both). With `--raw-llama`, each documents/ answer of the full prompt
is also decoded by a separate raw `llama_cpp.Llama` on the same messages (decode tokens/s ratio).
With `--cache`, a second llama.cpp model with the passage cache (full passages) answers too: mode `cache`
beside the others (its first pass: a passage is stored the first time any question retrieves it), then
mode `cache-warm`, every question of the set asked again on the same cache (its passages all stored; the
previous prompt in the model is the previous question's, as in the first pass). Rows count the passages
placed from the cache and computed into it. `--cache-recompute 0,16` runs one cached model per value of
`passage_cache_recompute_tokens` (modes `cache`, `cache-r16`, each with its `-warm` pass): the last tokens of
each placed passage evaluated again after the passages before it. Results go to evals/out/ask.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
# No OMP_WAIT_POLICY here: the product sets none, and PASSIVE slows llama.cpp's decoding by about a
# quarter on 2 cores (its OpenMP workers sleep between tokens). Runs before session 14 set PASSIVE.

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


def static_prefix_tokens(assistant) -> int:  # noqa: ANN001
    """Tokens every prompt of `assistant` starts with (instructions and demonstration): the longest common
    prefix of two prompts with different questions and passages."""
    from rag.grounding import build_messages
    from rag.types import Chunk, Passage

    def prompt(question: str, text: str) -> list[int]:
        chunk = Chunk(doc_id="d", text=text, start=0, end=len(text))
        passage = Passage(chunk=chunk, score=1.0, source="d", title="T")
        messages = build_messages(question, [passage], assistant.settings.answer_style)
        return assistant.generator._rendered(messages)[1]

    first, second = prompt("Which river?", "Rivers flow."), prompt("Who wrote it?", "Books are read.")
    return next((i for i, (a, b) in enumerate(zip(first, second)) if a != b), len(first))


STATIC_PREFIX: dict[str, int] = {}
"""`static_prefix_tokens` per answer style (one model per run), computed once."""


def forget_question(assistant) -> None:  # noqa: ANN001
    """Keep only the static prefix in llama.cpp's cache, as after a question with other passages: every
    mode asks the same question in turn, and a mode whose prompt repeats the previous mode's (a budget
    that cuts the passages the same way) would otherwise start from a free prefill."""
    llama = getattr(assistant.generator, "_llama", None)
    if llama is not None:
        style = assistant.settings.answer_style
        if style not in STATIC_PREFIX:
            STATIC_PREFIX[style] = static_prefix_tokens(assistant)
        llama.n_tokens = min(llama.n_tokens, STATIC_PREFIX[style])


def ask_row(assistant, question: str) -> tuple[dict, object]:  # noqa: ANN001
    """One answer's timings and citations (and the answer, for scoring), from a cache that holds only the
    static prefix (`forget_question`)."""
    cache = getattr(assistant.generator, "passage_cache", None)
    before = (cache.totals.placed, cache.totals.computed) if cache else (0, 0)
    forget_question(assistant)
    answer = assistant.ask(question)
    t = answer.timings
    row = {
        "question": question,
        "abstained": answer.abstained,
        "citations": [c.n for c in answer.citations],
        "first_token_seconds": round(t.get("first_token_seconds", t["total_seconds"]), 3),
        "total_seconds": round(t["total_seconds"], 3),
        "prompt_tokens": int(t.get("prompt_tokens", 0)),
        "completion_tokens": int(t.get("completion_tokens", 0)),
        "compression_seconds": round(t.get("compression_seconds", 0.0), 3),
        "answer": answer.text,
    }
    if cache:
        row["passages_placed"] = cache.totals.placed - before[0]
        row["passages_computed"] = cache.totals.computed - before[1]
    return row, answer


def summarize(rows: list[dict]) -> dict:
    """Medians of the speed figures, and the quality figures where the rows are scored."""
    generated = [r for r in rows if r["completion_tokens"]] or rows
    summary = {
        "questions": len(rows),
        "answered": sum(not r["abstained"] for r in rows),
        "median_first_token_seconds": round(
            statistics.median(r["first_token_seconds"] for r in generated), 3
        ),
        "median_total_seconds": round(statistics.median(r["total_seconds"] for r in rows), 3),
        "median_prompt_tokens": statistics.median(r["prompt_tokens"] for r in generated),
        "median_compression_seconds": round(statistics.median(r["compression_seconds"] for r in rows), 3),
    }
    if any("passages_placed" in r for r in rows):
        summary["passages_placed"] = sum(r["passages_placed"] for r in rows)
        summary["passages_computed"] = sum(r["passages_computed"] for r in rows)
    scored = [r for r in rows if "f1" in r]
    if scored:
        summary["f1"] = round(100 * statistics.mean(r["f1"] for r in scored), 1)
        summary["gold_cited_rate"] = round(100 * statistics.mean(r["gold_cited"] for r in scored), 1)
    return summary


def with_budget(assistant, mode: str):  # noqa: ANN001, ANN201
    """An assistant on the same index and models whose prompts hold at most `mode`'s passage tokens: "B"
    (prompt_passage_tokens B) or "B:kK" (also top_k K: fewer passages, so fewer best sentences kept)."""
    from rag.assistant import Assistant

    budget, _, k = mode.partition(":k")
    update = {"prompt_passage_tokens": int(budget)} | ({"top_k": int(k)} if k else {})
    return Assistant(
        assistant.settings.model_copy(update=update),
        embedder=assistant.embedder,
        generator=assistant.generator,
        support_checker=assistant.support_checker,
    )


def with_cache(assistant, generator):  # noqa: ANN001, ANN201
    """An assistant on the same index and embedder whose llama.cpp model has the passage cache."""
    from rag.assistant import Assistant

    settings = assistant.settings.model_copy(update={"prompt_passage_tokens": 0, "passage_cache": True})
    return Assistant(
        settings, embedder=assistant.embedder, generator=generator, support_checker=assistant.support_checker
    )


def run_questions(assistants: dict[str, object], questions: list, label: str) -> dict[str, list[dict]]:
    """Every question under every mode in turn; SQuAD questions scored (F1, gold paragraph cited)."""
    from rag.evaluation.scoring import token_f1
    from rag.text import strip_citations

    rows: dict[str, list[dict]] = {b: [] for b in assistants}
    for i, question in enumerate(questions):
        # Alternate which mode goes first, so none always follows another's prompt.
        order = list(assistants) if i % 2 == 0 else list(reversed(assistants))
        for budget in order:
            text = question if isinstance(question, str) else question.question
            row, answer = ask_row(assistants[budget], text)
            if not isinstance(question, str):
                answered = not answer.abstained
                row["f1"] = token_f1(strip_citations(answer.text), question.answers) if answered else 0.0
                # A JSONL record is indexed as document "<file>#<record id>".
                cited = [c.document.rsplit("#", 1)[-1] for c in answer.citations]
                row["cited_documents"] = cited
                row["gold_cited"] = float(answered and question.gold_doc in cited)
            row["mode"] = budget
            rows[budget].append(row)
            print(label, json.dumps(row), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--index", type=Path, default=Path("index/default"))
    parser.add_argument(
        "--budgets",
        default="0,160",
        help="prompt_passage_tokens to compare (0: full prompt; B:kK also top_k K); the first: baseline.",
    )
    parser.add_argument("--documents-questions", type=int, default=len(QUESTIONS), help="Of the five.")
    parser.add_argument("--squad", type=Path, default=Path("../shared/datasets/squad_v1.1"))
    parser.add_argument("--squad-questions", type=int, default=50, help="SQuAD questions (0: none).")
    parser.add_argument("--squad-articles", default="", help="Articles A:B (default: the dev split, 0:32).")
    parser.add_argument("--squad-index", type=Path, default=Path("index/squad-dev32"))
    parser.add_argument("--raw-llama", action="store_true", help="Also time raw llama-cpp decoding.")
    parser.add_argument("--cache", action="store_true", help="Also the passage KV cache: first, second pass.")
    parser.add_argument(
        "--cache-mb", type=int, default=2048, help="passage_cache_mb for --cache (room for the whole run)."
    )
    parser.add_argument(
        "--cache-recompute",
        default="0",
        help="passage_cache_recompute_tokens for --cache, comma-separated: a cache mode each (cache-rR).",
    )
    parser.add_argument("--out", type=Path, default=Path("evals/out"))
    args = parser.parse_args()

    from rag.assistant import Assistant
    from rag.config import Settings
    from rag.generation import build_generator
    from rag.generation.packaged import packaged_gguf_path
    from rag.grounding import build_messages

    budgets = args.budgets.split(",")
    load_before = os.getloadavg()
    settings = Settings(index_dir=args.index)
    assistant = Assistant(settings)
    assistant.retrieve("warm up")
    assistant.generator  # noqa: B018  (load before timing)
    cached_generators = {}
    for recompute in (int(r) for r in args.cache_recompute.split(",")) if args.cache else ():
        update = {"passage_cache": True, "passage_cache_mb": args.cache_mb}
        name = "cache" if recompute == 0 else f"cache-r{recompute}"
        cached_generators[name] = build_generator(
            settings.model_copy(update=update | {"passage_cache_recompute_tokens": recompute})
        )

    def modes(base):  # noqa: ANN001, ANN202
        found = {b: with_budget(base, b) for b in budgets}
        for name, generator in cached_generators.items():
            found[name] = with_cache(base, generator)
        return found

    def both_passes(assistants: dict, questions: list, label: str) -> dict[str, list[dict]]:
        rows = run_questions(assistants, questions, label)
        warm = {f"{name}-warm": assistants[name] for name in cached_generators}
        if warm:
            rows.update(run_questions(warm, questions, label))
        return rows

    assistants = modes(assistant)
    baseline = budgets[0]
    # One untimed answer per budget first: the first batches of bfloat16 embeddings (compression) pay one-time
    # kernel set-up (about 0.6 s more on the first questions here). Not the cache modes: their first pass
    # starts from an empty cache.
    for budget in budgets:
        forget_question(assistants[budget])
        assistants[budget].ask(QUESTIONS[0])
    documents = both_passes(assistants, QUESTIONS[: args.documents_questions], "documents")
    if args.raw_llama:
        for row in documents[baseline]:
            if row["completion_tokens"]:
                answer = assistants[baseline].ask(row["question"])
                raw = raw_llama_decode(
                    packaged_gguf_path(settings.model_cache_dir),
                    settings.threads,
                    settings.context_tokens,
                    build_messages(row["question"], answer.passages),
                    settings.max_answer_tokens,
                )
                row["raw_llama_decode_tokens_per_second"] = round(raw["decode_tokens_per_second"], 2)
                row["raw_llama_first_token_seconds"] = round(raw["first_token_seconds"], 3)
    result: dict = {
        "budgets": budgets,
        "threads": settings.threads,
        "documents": {mode: summarize(rows) for mode, rows in documents.items()},
    }
    squad_rows: dict[str, list[dict]] = {}
    if args.squad_questions:
        from rag.evaluation.datasets import load_squad, split_articles
        from rag.evaluation.retrieval import build_index

        squad = load_squad(args.squad, args.squad_articles or split_articles(args.squad, "dev"))
        questions = squad.sample(args.squad_questions)
        short = settings.model_copy(update={"answer_style": "short"})
        indexed = build_index(squad.retrieval(), short, args.squad_index)
        squad_base = Assistant(
            indexed.settings,
            embedder=assistant.embedder,
            generator=assistant.generator,
            support_checker=assistant.support_checker,
        )
        squad_rows = both_passes(modes(squad_base), questions, "squad")
        result["squad"] = {mode: summarize(rows) for mode, rows in squad_rows.items()}
    for name in ("documents", "squad"):
        base = result.get(name, {}).get(baseline)
        for mode, row in result.get(name, {}).items():
            if base and mode != baseline:
                for key in ("median_first_token_seconds", "median_total_seconds"):
                    row[key.replace("median_", "ratio_") + "_to_full"] = round(row[key] / base[key], 3)
    for name, generator in cached_generators.items():
        states = generator.passage_cache.states
        result.setdefault("passage_cache", {})[name] = {
            "entries": len(states),
            "bytes": states.bytes_used,
            "budget_mb": args.cache_mb,
            "recompute_tokens": generator.passage_cache.recompute_tokens,
        }
    result["load_average_before"] = [round(x, 2) for x in load_before]
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ask.json").write_text(
        json.dumps(
            {
                "summary": result,
                "documents_questions": documents,
                "squad_questions": squad_rows,
            },
            indent=2,
        )
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
