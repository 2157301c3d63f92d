"""The command line: help, exit codes, clear one-line errors without tracebacks."""

from __future__ import annotations

import io
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
        ["check"],
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


def test_a_missing_path_fails_before_anything_is_written(tmp_path: Path) -> None:
    index = tmp_path / "index"
    result = runner.invoke(app, ["ingest", str(tmp_path / "nonexistent"), "--index", str(index)])
    assert result.exit_code == 2 and "No such file or folder" in result.output
    assert str(tmp_path / "nonexistent") in result.output and "Nothing was indexed" in result.output
    assert not index.exists()


def test_index_and_collection_together_are_refused(tmp_path: Path) -> None:
    result = runner.invoke(app, ["ask", "q", "--index", str(tmp_path), "--collection", "manuals"])
    assert result.exit_code == 2 and "not both" in result.output
    bad = runner.invoke(app, ["ask", "q", "--collection", "../etc"])
    assert bad.exit_code == 2 and "not a collection name" in bad.output


def test_ingest_progress_never_falls_back_and_says_when_it_estimates() -> None:
    from rich.console import Console
    from rich.progress import Progress

    from rag.cli.ingest import IngestProgress

    with Progress(console=Console(file=io.StringIO(), force_terminal=True)) as bar:
        progress = IngestProgress(bar, files_total=4)
        assert progress.estimated_total() == (None, False)  # indeterminate until a file is read
        shown: list[tuple[float, float]] = []
        events = [("files", 1), ("chunks", 10), ("embedded", 8), ("embedded", 2), ("files", 1)]
        events += [("chunks", 30), ("embedded", 16), ("files", 1), ("files", 1), ("chunks", 5)]
        events += [("embedded", 16), ("embedded", 3)]
        for kind, n in events:
            progress(kind, n)
            task = bar.tasks[progress.task]
            shown.append((task.completed, task.total or 0))
        assert all(done < total or (done, total) == shown[-1] for done, total in shown)
        assert progress.estimated_total() == (45, True) and shown[-1] == (45, 45)
        assert "4/4 files" in bar.tasks[progress.task].fields["files"]
        assert shown[1][1] == 40  # 10 chunks in 1 of 4 files: about 40 in all


def test_text_answers_show_markers_unsupported_marks_and_sorted_sources() -> None:
    from rag.cli.ask import answer_text, print_answer
    from rag.cli.common import out
    from rag.types import Answer, AnswerSentence, Chunk, Citation, Passage

    sentences = [
        AnswerSentence("Erebus is in Antarctica [2].", (2,), supported=True, support=0.9),
        AnswerSentence("It erupted in 1841.", (1,), attributed=True, supported=True, support=0.7),
        AnswerSentence("It is 9000 m tall [2].", (2,), supported=False, support=0.0, issues=("9000 m",)),
    ]
    text = "Erebus is in Antarctica [2]. It erupted in 1841. It is 9000 m tall [2]."
    chunk = Chunk("v.md", "Erebus", 0, 6, heading_path=("Volcanoes", "Erebus"))
    citations = [Citation(2, "v.md", "Volcanoes", None, 0, 6, "Erebus", 0.8)]
    citations.append(Citation(1, "h.md", "History", 3, 0, 6, "Erebus", 0.6))
    answer = Answer(text, False, citations, passages=[Passage(chunk, 1.0, "v.md", "V")], sentences=sentences)
    plain = answer_text(answer).plain
    expected = "Erebus is in Antarctica [2]. It erupted in 1841 [1]. It is 9000 m tall [2]. ⚠ unsupported"
    assert plain == expected + " (9000 m)"
    with out.capture() as captured:
        print_answer(answer)
    printed = captured.get()
    assert printed.index("[1] History › Erebus (h.md, page 3") < printed.index("[2] Volcanoes (v.md")

    far, near = Passage(chunk, 0.9, "far.md", "F", dense_score=0.1), Passage(chunk, 0.1, "near.md", "N", 0.3)
    with out.capture() as captured:
        print_answer(Answer("The documents do not say.", True, passages=[far, near]))
    assert captured.get().index("near.md") < captured.get().index("far.md")


@pytest.mark.slow
def test_a_collection_is_ingested_and_asked_by_name(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Alpha\n\nAlpha particles are helium nuclei.\n")
    ingested = rag("ingest", str(docs), "--collection", "physics", cwd=tmp_path)
    assert ingested.returncode == 0, ingested.stderr
    assert (tmp_path / "index" / "physics").is_dir() and not (tmp_path / "index" / "default").exists()
    asked = rag("ask", "How do I bake sourdough bread?", "--collection", "physics", cwd=tmp_path)
    assert asked.returncode == 0, asked.stderr
    assert "Nearest passages" in asked.stdout and "a.md" in asked.stdout
    listed = rag("docs", "list", "--collection", "physics", "--json", cwd=tmp_path)
    assert [Path(d["id"]).name for d in json.loads(listed.stdout)] == ["a.md"]
