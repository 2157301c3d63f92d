"""Generate the hostile corpus (issue 14) into a folder, never into the repository: bad names, deep nesting,
a zip bomb, a huge `[` Markdown file, binaries with text suffixes, truncated and empty files, special files
(FIFO, link loop, broken link, folder link), odd encodings, bad JSON lines, and good files beside them.

    python tests/hostile/make_corpus.py FOLDER            # write the corpus
    python tests/hostile/make_corpus.py FOLDER --ingest   # and ingest it (real embedder, default settings)
                                                          # printing what was handled, by kind, peak RSS, time

`make_corpus` returns what each entry must become: "indexed", "ignored" (not a supported file: not
ingested, not reported), or a piece of the reason it must be refused with.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import sys
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

MIB = 2**20


@dataclass(frozen=True)
class Entry:
    """One file (or link, or FIFO) of the corpus: its name (bytes where it is not UTF-8), its kind and what
    the ingest must make of it."""

    name: bytes
    kind: str
    expect: str


@dataclass(frozen=True)
class Sizes:
    """How big the costly entries are: the defaults reproduce the issue; tests use smaller ones with
    smaller limits."""

    zip_bomb_mb: int = 300
    brackets_mb: float = 5.0
    many_chunks_words: int = 5_000_000
    memory_hog_mb: int = 40


def _docx(paragraphs: list[str]) -> bytes:
    import docx

    word = docx.Document()
    word.add_heading("Hostile corpus", level=1)
    for paragraph in paragraphs:
        word.add_paragraph(paragraph)
    buffer = io.BytesIO()
    word.save(buffer)
    return buffer.getvalue()


def _pdf(text: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.multi_cell(0, 10, text)
    return bytes(pdf.output())


def _zip_bomb(unpacked_mb: int) -> bytes:
    """A real Word file with one more member: `unpacked_mb` MiB of zeros, a few hundred KiB packed."""
    buffer = io.BytesIO(_docx(["A document that unpacks to far more than it weighs."]))
    with (
        zipfile.ZipFile(buffer, "a", compression=zipfile.ZIP_DEFLATED) as archive,
        archive.open("word/media/zeros.bin", "w", force_zip64=True) as member,
    ):
        for _ in range(unpacked_mb):
            member.write(b"\0" * MIB)
    return buffer.getvalue()


def make_corpus(folder: Path, sizes: Sizes = Sizes()) -> list[Entry]:
    """Write the corpus into `folder` (created) and return its entries."""
    folder.mkdir(parents=True, exist_ok=True)
    root = os.fsencode(folder)
    rng = random.Random(14)
    entries: list[Entry] = []

    def write(name: str | bytes, kind: str, expect: str, data: bytes) -> None:
        raw = name if isinstance(name, bytes) else name.encode("utf-8")
        with open(os.path.join(root, raw), "wb") as handle:
            handle.write(data)
        entries.append(Entry(raw, kind, expect))

    prose = "The volcano has a lava lake. Bees make honey from flowers. Bread rises with yeast.\n"
    # Good files of every format: all must be indexed.
    write("good.txt", "good", "indexed", prose.encode())
    write("good.md", "good", "indexed", f"# Good\n\n{prose}".encode())
    write(
        "good.html",
        "good",
        "indexed",
        f"<html><title>Good</title><body><p>{prose}</p></body></html>".encode(),
    )
    write("good.jsonl", "good", "indexed", b'{"_id": "1", "text": "Lava."}\n{"_id": "2", "text": "Honey."}\n')
    write("good.docx", "good", "indexed", _docx([prose]))
    write("good.pdf", "good", "indexed", _pdf(prose))
    # Names: not UTF-8, a newline, rich markup, emoji, a very long one, a leading dash.
    write(b"bad\xff\xfename.txt", "bad names", "indexed", prose.encode())
    write("new\nline.md", "bad names", "indexed", prose.encode())
    write("[bold red]markup[link=x].txt", "bad names", "indexed", prose.encode())
    write("\u00fcn\u00efc\u00f6de \U0001f600.md", "bad names", "indexed", prose.encode())
    write("long-" + "n" * 200 + ".txt", "bad names", "indexed", prose.encode())
    write("-rf.txt", "bad names", "indexed", prose.encode())
    # Encodings.
    write("utf16-le-no-bom.txt", "encodings", "indexed", prose.encode("utf-16-le"))
    write("utf16-be-no-bom.txt", "encodings", "indexed", prose.encode("utf-16-be"))
    write("utf16-bom.txt", "encodings", "indexed", prose.encode("utf-16"))
    write(
        "cp1252.txt",
        "encodings",
        "indexed",
        "Caf\u00e9 cr\u00e8me br\u00fbl\u00e9e, na\u00efve.\n".encode("cp1252"),
    )
    write("ansi-escapes.txt", "encodings", "indexed", b"\x1b[31mred lava\x1b[0m and \x07bells\n")
    write("surrogates.jsonl", "encodings", "indexed", b'{"_id": "\\ud800", "text": "half \\udc00 a pair"}\n')
    # Nesting: deep but fine, beyond the limit, and JSON nested past what Python reads.
    write("deep-1000.html", "deep nesting", "indexed", b"<div>" * 1000 + b"deep lava" + b"</div>" * 1000)
    write("deep-100k.html", "deep nesting", "setting max_nesting_depth", b"<div>" * 100_000 + b"x")
    write("deep.jsonl", "deep nesting", "line 1:", b'{"_id": "x", "text": ' + b"[" * 100_000 + b"\n")
    # Resource bombs.
    write("zip-bomb.docx", "zip bomb", "setting max_decompressed_mb", _zip_bomb(sizes.zip_bomb_mb))
    write("brackets.md", "huge markdown", "setting ", b"[" * int(sizes.brackets_mb * MIB))
    words = b"lava " * sizes.many_chunks_words
    write("many-chunks.txt", "chunk cap", "setting max_chunks_per_document", words)
    write(
        "memory-hog.txt",
        "memory",
        "setting max_parse_memory_mb",
        "\u03a9".encode() * (sizes.memory_hog_mb * MIB // 2),
    )
    # Binaries and corrupt files with text or document suffixes.
    write("binary.txt", "binary with text suffix", "binary", bytes(rng.randrange(256) for _ in range(4096)))
    write("elf.md", "binary with text suffix", "binary", b"\x7fELF\x02\x01\x01" + b"\0" * 512)
    pdf = _pdf(prose * 20)
    write("truncated.pdf", "truncated or corrupt", "corrupt", pdf[: len(pdf) // 2])
    write("random.pdf", "truncated or corrupt", "corrupt", b"%PDF-1.7\n" + rng.randbytes(2048))
    write("corrupt.docx", "truncated or corrupt", "corrupt", b"PK\x03\x04" + rng.randbytes(2048))
    write(
        "bad.jsonl", "truncated or corrupt", "line 2: invalid JSON", b'{"_id": "1", "text": "ok"}\n{"_id": \n'
    )
    # Empty.
    write("empty.txt", "empty", "empty file", b"")
    write("blank.md", "empty", "no extractable text", b" \n\t\n")
    write("tags-only.html", "empty", "no extractable text", b"<html><body><div></div></body></html>")
    # Not ours to index: skipped silently.
    write("program.exe", "unsupported", "ignored", b"MZ" + b"\0" * 64)
    write(".hidden.txt", "unsupported", "ignored", prose.encode())
    # Special entries.
    os.mkfifo(os.path.join(root, b"fifo.txt"))
    entries.append(Entry(b"fifo.txt", "special files", "FIFO"))
    os.symlink(b"loop.md", os.path.join(root, b"loop.md"))
    entries.append(Entry(b"loop.md", "special files", "symbolic link loop"))
    os.symlink(b"missing.txt", os.path.join(root, b"dangling.txt"))
    entries.append(Entry(b"dangling.txt", "special files", "broken symbolic link"))
    os.symlink(b".", os.path.join(root, b"folder-link"))
    entries.append(Entry(b"folder-link", "special files", "not followed"))
    os.symlink(b"good.txt", os.path.join(root, b"link-to-good.txt"))
    entries.append(Entry(b"link-to-good.txt", "special files", "ignored"))  # good.txt, indexed once
    return entries


class PeakMemory:
    """Samples the resident memory of this process and of the descendants it starts meanwhile (the parse
    workers, forked from a forkserver, are not waited-for children, so getrusage misses them) every 20 ms,
    keeping the peaks. Processes already running on entry (a test session's model server) are not counted."""

    def __init__(self) -> None:
        import psutil

        self._process = psutil.Process()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.main_mb = self.worker_mb = self.total_mb = 0.0
        self._earlier: set[int] = set()
        self.baseline_mb = 0.0  # this process's memory on entry (models a test session loaded before)

    def __enter__(self) -> PeakMemory:
        self._earlier = {child.pid for child in self._process.children(recursive=True)}
        self.baseline_mb = self._process.memory_info().rss / MIB
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self) -> None:
        import psutil

        while not self._stop.wait(0.02):
            try:
                main = self._process.memory_info().rss / MIB
                others = []
                for child in self._process.children(recursive=True):
                    if child.pid in self._earlier:
                        continue
                    with contextlib.suppress(psutil.Error):
                        others.append(child.memory_info().rss / MIB)
            except psutil.Error:
                continue
            self.main_mb = max(self.main_mb, main)
            self.worker_mb = max([self.worker_mb, *others])
            self.total_mb = max(self.total_mb, main + sum(others))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("folder", type=Path, help="Empty folder to write the corpus into.")
    parser.add_argument("--ingest", action="store_true", help="Then ingest it into FOLDER/index and report.")
    args = parser.parse_args()
    entries = make_corpus(args.folder / "corpus")
    print(f"{len(entries)} entries written to {args.folder / 'corpus'}")
    if not args.ingest:
        return
    from rag.assistant import Assistant
    from rag.config import Settings

    assistant = Assistant(Settings(index_dir=args.folder / "index"))
    started = time.perf_counter()
    with PeakMemory() as memory:
        report = assistant.ingest([args.folder / "corpus"])
    seconds = time.perf_counter() - started
    failed = {Path(f.path).name: f.reason for f in report.failed}
    handled: Counter[str] = Counter()
    for entry in entries:
        name = os.fsdecode(entry.name)
        outcome = "refused" if name in failed else "ignored" if entry.expect == "ignored" else "indexed"
        handled[f"{entry.kind}: {outcome}"] += 1
    for line in sorted(handled):
        print(f"  {line}: {handled[line]}")
    for name, reason in sorted(failed.items()):
        print(f"  skipped {name!a}: {reason}")
    print(
        json.dumps(
            {
                "entries": len(entries),
                "indexed_files": len(report.added),
                "refused": len(report.failed),
                "chunks": report.chunks_added,
                "seconds": round(seconds, 1),
                "peak_rss_mb_main": round(memory.main_mb),
                "peak_rss_mb_worker": round(memory.worker_mb),
                "peak_rss_mb_total": round(memory.total_mb),
            }
        )
    )
    sys.exit(0)


if __name__ == "__main__":
    main()
