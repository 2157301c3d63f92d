"""Trust sets (issue 11): off-collection questions and known-from-memory traps, with the product's defaults.

    python evals/trust_sets.py [--in-collection 30] [--off-collection 30] [--memory-limit N]
        [--index-root evals/out/trust-sets/index] [--out evals/out/trust-sets]
        [--results evals/RESULTS-trust-sets.md]

In one run, with the default settings (RAG_* variables and rag.toml apply):
- off-collection: SQuAD v1.1 development questions about articles 16:32 asked against an index of the
  paragraphs of articles 0:16 (`--index-articles`, `--off-articles`; development articles only, the
  last 16 are reserved), beside in-collection questions about the indexed articles: the share of
  off-collection questions abstained, and of in-collection ones answered (and right);
- memory traps: evals/memory_traps.jsonl against an index of documents/ plus the eight Node.js API
  pages of Debian's `nodejs` package (read in place): the share abstained.
Writes summary.json (with every record), summary.md and, with `--results`, that Markdown with the
command, settings and load. `--records FILE` summarises a run's records.jsonl (one cut short, too)
without asking again. `--generated JSON` also scores a file of evals/make_unanswerables.py with
`rag eval answers` (generative mode; `--generated-articles`, `--generated-limit`).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.config import Settings  # noqa: E402
from rag.evaluation.datasets import load_squad, parse_articles, split_articles  # noqa: E402
from rag.evaluation.devset import (  # noqa: E402
    NODE_PAGES,
    REPORTED_SETTINGS,
    collection_files,
    node_docs_folder,
    recalibrated,
)
from rag.evaluation.trust import (  # noqa: E402
    answer_record,
    collection_texts,
    interleave,
    load_memory_traps,
    markdown_summary,
    squad_sets,
    stated_answers,
    summarise,
    trap_questions,
)

TRAPS = Path(__file__).parent / "memory_traps.jsonl"


def load() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout.strip()


def dev_articles(selection: str, dev_stop: int) -> str:
    """`selection` when it lies within the development articles 0:`dev_stop`, else exit: the reserved
    articles are never read."""
    chosen = parse_articles(selection)
    if chosen.stop is None or chosen.stop > dev_stop:
        sys.exit(f"articles {selection} reach beyond the development articles 0:{dev_stop}")
    return selection


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--squad", type=Path, default=Path("../shared/datasets/squad_v1.1"))
    parser.add_argument("--index-articles", default="0:16", help="SQuAD v1.1 dev articles indexed.")
    parser.add_argument("--off-articles", default="16:32", help="SQuAD v1.1 dev articles asked, not indexed.")
    parser.add_argument("--in-collection", type=int, default=30)
    parser.add_argument("--off-collection", type=int, default=30)
    parser.add_argument("--memory-traps", type=Path, default=TRAPS)
    parser.add_argument("--memory-limit", type=int, default=None, help="Ask only the first N traps.")
    parser.add_argument("--no-memory", action="store_true", help="Skip the memory traps.")
    parser.add_argument("--no-off", action="store_true", help="Skip the off-collection run.")
    parser.add_argument(
        "--node-docs", type=Path, default=None, help="Node.js API pages (default: from dpkg)."
    )
    parser.add_argument("--documents", type=Path, default=Path("documents"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--index-root", type=Path, default=Path("evals/out/trust-sets/index"))
    parser.add_argument("--out", type=Path, default=Path("evals/out/trust-sets"))
    parser.add_argument("--results", type=Path, default=None, help="Also write the Markdown report here.")
    parser.add_argument("--records", type=Path, default=None, help="Summarise this records.jsonl only.")
    parser.add_argument(
        "--calibrator",
        type=Path,
        default=None,
        help="With --records: read each confidence again from the stored signals (and hidden state) "
        "with this calibrator.",
    )
    parser.add_argument(
        "--generated", type=Path, default=None, help="Also score this generated SQuAD 2.0 file."
    )
    parser.add_argument("--generated-articles", default="0:4")
    parser.add_argument("--generated-limit", type=int, default=40)
    args = parser.parse_args()
    command = ("python evals/trust_sets.py " + shlex.join(sys.argv[1:])).strip()
    settings = Settings()
    args.out.mkdir(parents=True, exist_ok=True)
    meta: dict[str, Any] = {"command": command, "load_before": load()}
    if args.records:
        lines = args.records.read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines if line.strip()]
        meta["records"] = str(args.records)
        if args.calibrator:
            from rag.signals import Calibrator

            records = recalibrated(records, Calibrator.load(args.calibrator))
            meta["calibrator"] = str(args.calibrator)
    else:
        records = run(args, settings, meta)
    meta["load_after"] = load()
    if args.generated:
        meta["generated"] = score_generated(args)
    write(args, settings, meta, records)


def run(args: argparse.Namespace, settings: Settings, meta: dict[str, Any]) -> list[dict[str, Any]]:
    from rag.assistant import Assistant
    from rag.evaluation.retrieval import build_index

    groups: list[list] = []
    assistants: dict[str, Assistant] = {}
    started = time.perf_counter()
    if not args.no_off:
        dev_stop = int(split_articles(args.squad, "dev").partition(":")[2])
        indexed = load_squad(args.squad, dev_articles(args.index_articles, dev_stop))
        asked = load_squad(args.squad, dev_articles(args.off_articles, dev_stop))
        if parse_articles(args.index_articles).stop > (parse_articles(args.off_articles).start or 0):
            sys.exit("--off-articles must come after --index-articles (no article both indexed and off)")
        inside, outside = squad_sets(
            indexed.questions, asked.questions, args.in_collection, args.off_collection, args.seed
        )
        groups += [inside, outside]
        assistants["squad"] = build_index(indexed.retrieval(), settings, args.index_root / "squad")
        meta["squad"] = {
            "file": str(args.squad),
            "index_articles": args.index_articles,
            "off_articles": args.off_articles,
            "indexed_paragraphs": len(indexed.corpus),
        }
        progress(f"squad index: {len(indexed.corpus)} paragraphs ({time.perf_counter() - started:.0f} s)")
    if not args.no_memory:
        node_docs = node_docs_folder(args.node_docs)
        if node_docs is None:
            sys.exit(
                "The Node.js API pages were not found: install Debian's nodejs package or pass --node-docs."
            )
        files = [
            *collection_files("node", node_docs, args.documents),
            *collection_files("documents", node_docs, args.documents),
        ]
        traps = load_memory_traps(args.memory_traps)[: args.memory_limit]
        stated = stated_answers(traps, collection_texts(files))
        if stated:
            sys.exit(f"memory traps whose answer the collection states: {stated}")
        first = next(iter(assistants.values()), None)
        assistant = Assistant(
            settings.model_copy(update={"index_dir": args.index_root / "docs-node"}), models=first
        )
        report = assistant.ingest(files)
        assistants["docs-node"] = assistant
        groups.append(trap_questions(traps))
        meta["memory"] = {"node_docs": str(node_docs), "pages": list(NODE_PAGES), "files": len(files)}
        progress(
            f"docs-node index: {report.chunks_added} chunks added ({time.perf_counter() - started:.0f} s)"
        )
    questions = interleave(groups)
    sink = args.out / "records.jsonl"
    sink.unlink(missing_ok=True)
    records = []
    meta["load_questions_start"] = load()
    for number, question in enumerate(questions, start=1):
        assistant = assistants["docs-node" if question.set == "memory_trap" else "squad"]
        record = answer_record(question, assistant.ask(question.question))
        records.append(record)
        with sink.open("a", encoding="utf-8") as out:
            out.write(json.dumps(record) + "\n")
        verdict = "right" if record["right"] else "WRONG"
        confidence = "-" if record["confidence"] is None else f"{record['confidence']:.3f}"
        progress(
            f"[{number}/{len(questions)}] {question.set} {question.id}: {verdict}, "
            f"{'abstained' if record['abstained'] else 'answered'}, confidence {confidence} "
            f"({record['seconds'] or 0:.1f} s)"
        )
        if number % 10 == 0 and number < len(questions):  # a run stopped early keeps a report
            partial = {
                **meta,
                "partial": f"{number} of {len(questions)} questions asked",
                "load_after": load(),
            }
            partial["wall_seconds"] = round(time.perf_counter() - started, 1)
            write(args, settings, partial, records, quiet=True)
    meta["wall_seconds"] = round(time.perf_counter() - started, 1)
    return records


def score_generated(args: argparse.Namespace) -> dict[str, Any]:
    """`rag eval answers` (generative mode) on the generated file; its figures and where they are."""
    out = args.out / "generated"
    command = [
        str(Path(sys.executable).with_name("rag")),
        "eval",
        "answers",
        "--data",
        str(args.generated),
        "--articles",
        args.generated_articles,
        "--limit",
        str(args.generated_limit),
        "--mode",
        "generative",
        "--out",
        str(out),
        "--index",
        str(args.index_root / f"generated-{args.generated.stem}-{args.generated_articles.replace(':', '-')}"),
    ]
    progress("$ " + shlex.join(command))
    subprocess.run(command, check=True)
    results = json.loads((out / "results.json").read_text(encoding="utf-8"))
    generative = results.get("modes", {}).get("generative", {})
    confidence = results.get("confidence", {})
    return {
        "command": shlex.join(["rag", *command[1:]]),
        "results": str(out / "results.json"),
        "answered_rate": generative.get("answered_rate"),
        "abstain_rate_unanswerable": generative.get("abstain_rate_unanswerable"),
        "f1": generative.get("f1"),
        "auroc": confidence.get("auroc"),
        "operating_point": confidence.get("operating_point"),
    }


def write(
    args: argparse.Namespace,
    settings: Settings,
    meta: dict[str, Any],
    records: list[dict[str, Any]],
    *,
    quiet: bool = False,
) -> None:
    summary = summarise(records)
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    reported = {name: str(getattr(settings, name)) for name in REPORTED_SETTINGS if hasattr(settings, name)}
    full = {**meta, "date": when, "settings": reported, **summary, "records": records}
    (args.out / "summary.json").write_text(json.dumps(full, indent=2, default=str), encoding="utf-8")
    body = markdown_summary(summary, records)
    (args.out / "summary.md").write_text(body, encoding="utf-8")
    if args.results:
        setting_lines = "".join(f"- `{k}`: `{v}`\n" for k, v in reported.items())
        generated = ""
        if "generated" in meta:
            g = meta["generated"]
            generated = (
                "\n## Generated unanswerable questions\n\n"
                f"`{g['command']}`: answered {g['answered_rate']} %, unanswerable abstained "
                f"{g['abstain_rate_unanswerable']} %, F1 {g['f1']}, AUROC {g['auroc']}.\n"
            )
        args.results.write_text(
            "# Trust sets: off-collection questions and known-from-memory traps\n\n"
            f"Measured {when} with the default settings:\n\n{setting_lines}\n"
            f"Command: `{meta['command']}`\n\n"
            f"Load (`uptime`) before: `{meta.get('load_before')}`; when the questions started: "
            f"`{meta.get('load_questions_start', '-')}`; after: `{meta.get('load_after')}`. "
            f"Wall time: {meta.get('wall_seconds', '-')} s."
            + (f" **Stopped early: {meta['partial']}.**" if meta.get("partial") else "")
            + "\n\n"
            + body
            + generated,
            encoding="utf-8",
        )
    if quiet:
        return
    progress(
        f"wrote {args.out / 'summary.json'}, {args.out / 'summary.md'}"
        + (f", {args.results}" if args.results else "")
    )
    print(body)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
