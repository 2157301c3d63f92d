"""Limits on parsing one file, and the checks that refuse a file before a parser could exceed them.

Time and memory are bounded by the worker process a file is parsed in (`rag.parsers.pool`); what can be
seen in the bytes first is checked here: the unpacked size of a Word file (a zip bomb), and the nesting
depth of HTML elements (the HTML tree builder's time grows with the square of the depth).
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, fields

from rag.config import Settings
from rag.errors import ParseError
from rag.parsers.common import MIB, SourceFile

# Elements that never hold others, or whose end tag may be left out (the parser closes them itself):
# they do not deepen the tree, so the depth count skips them.
_FLAT_ELEMENTS = frozenset(
    b"area base br col embed hr img input link meta param source track wbr p li dt dd tr td th thead "
    b"tbody tfoot option optgroup rb rt rtc rp colgroup caption html head body".split()
)
_TAG = re.compile(rb"<(/?)([A-Za-z][A-Za-z0-9:-]*)[^<>]*?(/?)>")


@dataclass(frozen=True)
class ParseLimits:
    """Bounds on the parsing of one file; each is the setting of the same name (see `rag.config`)."""

    parse_timeout_seconds: float
    max_parse_memory_mb: int
    max_decompressed_mb: float
    max_nesting_depth: int

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> ParseLimits:
        """The limits `settings` set; their defaults when no settings are given."""
        names = [field.name for field in fields(cls)]
        if settings is None:
            return cls(**{name: Settings.model_fields[name].default for name in names})
        return cls(**{name: getattr(settings, name) for name in names})

    def describe(self, name: str) -> str:
        """'the 60 s limit (setting parse_timeout_seconds)': a limit as a refusal names it."""
        value = getattr(self, name)
        unit = {"parse_timeout_seconds": " s", "max_nesting_depth": " levels"}.get(name, " MiB")
        return f"the {value:g}{unit} limit (setting {name})"


def check_limits(file: SourceFile, file_format: str, limits: ParseLimits) -> None:
    """Refuse, with the limit and its setting named, a file its parser would unpack or nest beyond limits."""
    if file_format == "docx":
        _check_unpacked_size(file, limits)
    elif file_format == "html":
        _check_html_depth(file, limits)


def _check_unpacked_size(file: SourceFile, limits: ParseLimits) -> None:
    """The sizes a zip declares for its members bound what reading them yields (zipfile stops there)."""
    try:
        with zipfile.ZipFile(io.BytesIO(file.data)) as archive:
            unpacked = sum(member.file_size for member in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError, EOFError):
        return  # not a readable zip: the parser says it is corrupt
    if unpacked > limits.max_decompressed_mb * MIB:
        raise ParseError(
            file.source,
            f"unpacks to {unpacked / MIB:,.1f} MiB, more than {limits.describe('max_decompressed_mb')}",
        )


def html_depth(data: bytes, stop_at: int) -> int:
    """How deep elements nest in HTML (counting only elements that need an end tag), up to `stop_at`."""
    depth = deepest = 0
    for match in _TAG.finditer(data):
        closing, name, self_closing = match.groups()
        if self_closing or name.lower() in _FLAT_ELEMENTS:
            continue
        if closing:
            depth = max(depth - 1, 0)
            continue
        depth += 1
        if depth > deepest:
            deepest = depth
            if deepest >= stop_at:
                break
    return deepest


def _check_html_depth(file: SourceFile, limits: ParseLimits) -> None:
    limit = limits.max_nesting_depth
    if file.data.count(b"<") <= limit:
        return
    depth = html_depth(file.data, stop_at=limit + 1)
    if depth > limit:
        raise ParseError(
            file.source, f"HTML elements nest deeper than {limits.describe('max_nesting_depth')}"
        )
