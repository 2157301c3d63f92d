"""What every parser shares: reading a file once within limits, decoding, normalising, building sections."""

from __future__ import annotations

import codecs
import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import charset_normalizer

from rag.errors import ParseError
from rag.types import Document, Section

MIB = 2**20

_UTF16_32_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
# Control characters that never belong in prose (tab, newline and form feed are kept).
_STRAY_CONTROLS = re.compile(r"[\x00-\x08\x0b\x0e-\x1f\x7f]")
# Halves of UTF-16 surrogate pairs: JSON escapes can produce them alone, and UTF-8 cannot store them.
_LONE_SURROGATES = re.compile(r"[\ud800-\udfff]")


def printable_name(name: str) -> str:
    """A file name as it can be printed and stored as text: the bytes of a name that is not UTF-8 (which
    Python keeps as lone surrogates) are written as `\\xNN` escapes."""
    try:
        raw = name.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return _LONE_SURROGATES.sub("\ufffd", name)
    return raw.decode("utf-8", "backslashreplace")


@dataclass(frozen=True)
class Heading:
    """A heading found by a parser: its level (1 = top), its text and where that text starts."""

    level: int
    title: str
    start: int


@dataclass(frozen=True)
class SourceFile:
    """A file as ingest reads it, once: its path, the name citations show, its bytes and their hash."""

    path: Path
    source: str
    data: bytes
    content_hash: str

    @property
    def size(self) -> int:
        return len(self.data)

    @property
    def stem(self) -> str:
        """The file name without its suffix, printable: the title of a document that names none."""
        return printable_name(self.path.stem)


def read_file(path: Path, source: str, max_bytes: int) -> SourceFile:
    """Read and hash a file once, refusing missing, oversized and empty files before any parsing."""
    try:
        size = path.stat().st_size
        if size > max_bytes:
            limit = f"the {max_bytes / MIB:g} MiB limit (setting max_file_mb)"
            raise ParseError(source, f"file is {size / MIB:.1f} MiB, larger than {limit}")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ParseError(source, "file not found") from None
    except IsADirectoryError:
        raise ParseError(source, "is a folder, not a file") from None
    except OSError as exc:
        raise ParseError(source, f"cannot read file: {exc.strerror or exc}") from None
    if not data:
        raise ParseError(source, "empty file")
    return SourceFile(path, source, data, hashlib.sha256(data).hexdigest())


def decode_text(data: bytes, source: str) -> str:
    """Decode a text file: UTF-8 (with or without BOM) first, else the encoding charset-normalizer finds."""
    has_wide_bom = data.startswith(_UTF16_32_BOMS)
    if b"\x00" in data and not has_wide_bom:
        wide = _utf16_without_bom(data)
        if wide is None:
            raise ParseError(source, "binary file, not text")
        return wide
    if not has_wide_bom:
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
    text = _legacy_decode(data)
    if text is None or _looks_binary(text):
        raise ParseError(source, "cannot decode text: not UTF-8 and no other encoding fits")
    return text.lstrip("\ufeff")


def _utf16_without_bom(data: bytes) -> str | None:
    """UTF-16 text without a byte order mark: mostly Latin text has a zero byte in every other position
    (after each character in little-endian, before it in big-endian), and none in the others."""
    sample = data[:65536]
    pairs = len(sample) // 2
    if len(data) % 2 or pairs == 0:
        return None
    zeros_even, zeros_odd = sample[0::2].count(0), sample[1::2].count(0)
    for zeros, others, codec in ((zeros_odd, zeros_even, "utf-16-le"), (zeros_even, zeros_odd, "utf-16-be")):
        if zeros >= pairs * 0.3 and others <= pairs * 0.01:
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                continue
            if not _looks_binary(text):
                return text
    return None


def _legacy_decode(data: bytes) -> str | None:
    """charset-normalizer's best guess; on a tie, Windows-1252, the most common legacy encoding."""
    matches = charset_normalizer.from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    tied = [m for m in matches if (m.chaos, m.coherence) == (best.chaos, best.coherence)]
    western = next((m for m in tied if m.encoding == "cp1252"), best)
    return str(western)


def _looks_binary(text: str) -> bool:
    """True when a decoding is full of control characters, which no human-written text is."""
    sample = text[:65536]
    return bool(sample) and len(_STRAY_CONTROLS.findall(sample)) > len(sample) * 0.01


def normalize(text: str) -> str:
    """Unix newlines; no NULs, stray control characters or lone surrogates: `Document.text`'s form."""
    text = _STRAY_CONTROLS.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    return _LONE_SURROGATES.sub("\ufffd", text)


def require_text(text: str, source: str, reason: str = "no extractable text") -> None:
    """Refuse a document whose text holds nothing but whitespace."""
    if not text.strip():
        raise ParseError(source, reason)


def build_sections(headings: Iterable[Heading], text_length: int) -> tuple[Section, ...]:
    """Sections from headings: each runs until the next heading of the same or a higher level."""
    ordered = sorted(headings, key=lambda h: h.start)
    sections: list[Section] = []
    stack: list[Heading] = []
    for i, heading in enumerate(ordered):
        while stack and stack[-1].level >= heading.level:
            stack.pop()
        stack.append(heading)
        end = next((h.start for h in ordered[i + 1 :] if h.level <= heading.level), text_length)
        sections.append(Section(path=tuple(h.title for h in stack), start=heading.start, end=end))
    return tuple(sections)


def join_blocks(blocks: Iterable[str], separator: str = "\n\n") -> tuple[str, list[int]]:
    """Join text blocks with `separator` and return the text and the start offset of every block."""
    parts: list[str] = []
    starts: list[int] = []
    offset = 0
    for block in blocks:
        if parts:
            parts.append(separator)
            offset += len(separator)
        starts.append(offset)
        parts.append(block)
        offset += len(block)
    return "".join(parts), starts


def file_document(file: SourceFile, title: str, text: str, headings: Iterable[Heading] = ()) -> Document:
    """The one Document of a single-document file: id and source are the file's name as shown."""
    return Document(
        id=file.source,
        source=file.source,
        title=title,
        text=text,
        sections=build_sections(headings, len(text)),
        content_hash=file.content_hash,
    )
