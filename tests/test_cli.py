"""The command line: help, exit codes, clear one-line errors without tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rag.cli import app
from rag.evaluation.records import AnswerRecord, QuestionRecord, SentenceRecord, write_records

runner = CliRunner()


def rag(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rag", *args], capture_output=True, text=True, cwd=cwd)


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["ingest"],
        ["ask"],
        ["serve"],
        ["docs"],
        ["docs", "list"],
        ["docs", "remove"],
        ["eval"],
        ["eval", "retrieval"],
        ["eval", "answers"],
        ["eval", "calibrate"],
        ["eval", "support"],
    ],
)
def test_help_everywhere(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and "--help" in result.output


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.startswith("rag ")


@pytest.mark.slow
def test_missing_index_is_one_clear_line(tmp_path: Path) -> None:
    result = rag("ask", "What is rag?", "--index", str(tmp_path / "none"))
    assert result.returncode == 2
    assert "No index at" in result.stderr and "rag ingest" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_invalid_setting_is_one_clear_line(tmp_path: Path) -> None:
    result = rag("ask", "q", "-k", "0", "--index", str(tmp_path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_ingest_list_remove_and_exit_codes(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nAlpha particles are helium nuclei.\n")
    (docs / "b.txt").write_text("Beta decay emits an electron.\n")
    index = tmp_path / "index"
    ok = rag("ingest", str(docs), "--index", str(index))
    assert ok.returncode == 0, ok.stderr
    assert "Indexed 2 new" in ok.stdout

    (docs / "bad.txt").write_bytes(b"\x00\xff\x00binary")
    partly = rag("ingest", str(docs), "--index", str(index))
    assert partly.returncode == 1
    assert "bad.txt: binary file" in partly.stderr
    assert "2 unchanged" in partly.stdout

    listed = rag("docs", "list", "--index", str(index), "--json")
    ids = sorted(Path(d["id"]).name for d in json.loads(listed.stdout))
    assert ids == ["a.md", "b.txt"]

    doc_id = next(d["id"] for d in json.loads(listed.stdout) if d["id"].endswith("a.md"))
    removed = rag("docs", "remove", doc_id, "--index", str(index))
    assert removed.returncode == 0 and "removed" in removed.stdout
    missing = rag("docs", "remove", "nope", "--index", str(index))
    assert missing.returncode == 2 and "No document 'nope'" in missing.stderr


@pytest.mark.slow
def test_empty_question_is_refused(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.txt").write_text("Some text.\n")
    assert rag("ingest", str(docs), "--index", str(tmp_path / "i")).returncode == 0
    result = rag("ask", "   ", "--index", str(tmp_path / "i"))
    assert result.returncode == 2 and "question is empty" in result.stderr


def test_unknown_retrieval_mode_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "retrieval", "--data", str(tmp_path), "--modes", "fuzzy"])
    assert result.exit_code == 2 and "unknown mode(s) fuzzy" in result.output


def test_unreadable_dataset_is_one_clear_line(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval", "retrieval", "--data", str(tmp_path / "none")])
    assert result.exit_code == 2 and "cannot read" in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_rescore_then_calibrate_on_stored_records(tmp_path: Path) -> None:
    data = tmp_path / "dev.json"
    data.write_text(json.dumps({"data": [{"title": "t", "paragraphs": []}] * 3}))
    cited = AnswerRecord("1908 [1].", False, (SentenceRecord("1908 [1].", ("p1",), (), 0.9),), 1.0, 0.1)
    made_up = AnswerRecord("No [1].", False, (SentenceRecord("No [1].", ("p2",), (), 0.1),), 1.0, 0.6)
    records = [
        QuestionRecord("1", "q", ("1908",), "p1", 0.5, cited, cited),
        QuestionRecord("2", "q", (), "p2", 0.2, made_up, made_up),
    ]
    write_records(tmp_path / "records.jsonl", records)
    out = tmp_path / "out"
    rescored = runner.invoke(
        app, ["eval", "answers", "--data", str(data), "--rescore", str(tmp_path / "records.jsonl"),
              "--out", str(out)],
    )  # fmt: skip
    assert rescored.exit_code == 0, rescored.output
    results = json.loads((out / "results.json").read_text())
    assert results["articles"] == "0:2" and results["modes"]["generative"]["exact_match"] == 100.0
    calibration = tmp_path / "calibration.json"
    chosen = runner.invoke(
        app, ["eval", "calibrate", "--records", str(out / "records.jsonl"), "--output", str(calibration)]
    )
    assert chosen.exit_code == 0, chosen.output
    entry = json.loads(calibration.read_text())["answers_strict"]
    assert entry["questions"] == 2 and entry["dev_strict"]["abstain_rate_unanswerable"] == 100.0
