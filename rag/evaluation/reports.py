"""Benchmark reports: results.json, report.md and a plot, for the retrieval and the answer benchmark."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rag.evaluation.records import QuestionRecord, write_records
from rag.evaluation.retrieval import DEPTH, LATENCY_K
from rag.evaluation.scoring import QUALITY_METRICS


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
    """The retrieval results as a Markdown section: a title, the command, a row per mode."""
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


def write_answer_report(
    results: dict[str, Any], records: list[QuestionRecord], out_dir: Path, command: str
) -> list[Path]:
    """results.json, records.jsonl, report.md and a bar plot of the main figures per mode."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    results = {**results, "command": command}
    (out_dir / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n", encoding="utf-8")
    write_records(out_dir / "records.jsonl", records)
    keys = QUALITY_METRICS
    figure, axis = plt.subplots(figsize=(10, 4))
    width = 0.8 / max(len(results["modes"]), 1)
    for i, (mode, m) in enumerate(results["modes"].items()):
        axis.bar([k + i * width for k in range(len(keys))], [m[k] for k in keys], width, label=mode)
    axis.set_xticks([k + width for k in range(len(keys))], [k.replace("_", "\n") for k in keys], fontsize=8)
    axis.set_ylim(0, 100)
    axis.legend()
    axis.set_title(f"{results['dataset']} {results['articles']}: {len(records)} questions")
    figure.tight_layout()
    figure.savefig(out_dir / "answers.png", dpi=100)
    plt.close(figure)
    lines = [
        f"# Answer benchmark: {results['dataset']}, articles {results['articles']}",
        "",
        f"Command: `{command}`",
        f"Gate (min_relevance) {results['gate']}, support threshold {results['support_threshold']}, "
        f"checker {results.get('support_checker')}.",
        "",
        "| mode | " + " | ".join(keys) + " | latency s (mean) |",
        "|---" * (len(keys) + 2) + "|",
    ]
    for mode, m in results["modes"].items():
        lines.append(
            f"| {mode} | " + " | ".join(f"{m[k]:.1f}" for k in keys) + f" | {m['latency_s_mean']:.2f} |"
        )
    lines += ["", "![figures per mode](answers.png)", ""]
    written = [out_dir / n for n in ("results.json", "records.jsonl", "report.md", "answers.png")]
    if "confidence" in results:
        lines += confidence_lines(results["confidence"])
        written.append(plot_coverage_risk(results["confidence"], out_dir / "coverage-risk.png", plt))
    (out_dir / "report.md").write_text("\n".join(lines), encoding="utf-8")
    return written


def confidence_lines(report: dict[str, Any]) -> list[str]:
    """The confidence section of report.md: AUROC, the default operating point, the curve."""
    auroc = report["auroc"]

    def row(name: str, p: dict[str, float]) -> str:
        return (
            f"| {name} | {p['threshold']:.3f} | {100 * p['coverage']:.1f} | {100 * p['risk']:.1f} | "
            f"{p['answered_answerable']:.1f} | {p['abstained_unanswerable']:.1f} | {p['f1_answered']:.1f} |"
        )

    return [
        "## Confidence",
        "",
        f"Calibrator: {report['calibrator']}. {report['questions']} questions, {report['right']} answered "
        f"right. **AUROC of the confidence: {'-' if auroc is None else f'{auroc:.3f}'}** (right vs "
        "wrong, unanswerable or refused); area under the coverage-risk curve "
        f"{report['area_under_risk']:.3f}. False refusals recovered extractively: {report['recovered']} "
        f"({report['recovered_right']} right, "
        f"{report['recovered_unanswerable']} on unanswerable questions).",
        "",
        "| point | min_confidence | coverage % | risk % | answered (answerable) % "
        "| abstained (unanswerable) % | F1 answered |",
        "|---|---|---|---|---|---|---|",
        row("default (min_confidence)", report["operating_point"]),
        row("same, without the recovery", report["without_recovery"]),
        row("no confidence threshold", report["no_threshold"]),
        "",
        "![coverage-risk curve](coverage-risk.png)",
        "",
    ]


def plot_coverage_risk(report: dict[str, Any], path: Path, plt: Any) -> Path:
    """The coverage-risk curve with the default operating point marked."""
    curve = sorted(report["curve"], key=lambda p: p["coverage"])
    figure, axis = plt.subplots(figsize=(5.5, 4))
    axis.plot([100 * p["coverage"] for p in curve], [100 * p["risk"] for p in curve], color="#4477aa")
    point = report["operating_point"]
    axis.scatter(
        [100 * point["coverage"]],
        [100 * point["risk"]],
        color="#ee6677",
        zorder=3,
        label=f"min_confidence {point['threshold']:.2f}",
    )
    axis.set_xlabel("coverage: questions answered (%)")
    axis.set_ylabel("risk: answered ones not right (%)")
    axis.set_xlim(0, 100)
    axis.set_ylim(0, 100)
    auroc = report["auroc"]
    axis.set_title(f"coverage-risk, AUROC {'-' if auroc is None else f'{auroc:.3f}'}")
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)
    return path
