"""Uploaded files: safe names, one folder per content so names never collide, size and type limits."""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import tempfile
import unicodedata
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from rag.parsers import SUPPORTED_SUFFIXES

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_NAME = 120
_CONTENT_FOLDER = 16
"""Hex digits of the content's sha256 that name an upload's folder."""


class UploadRejected(Exception):
    """A file refused before it reached the disk; the message says why."""


def safe_filename(name: str) -> str:
    """A plain file name from whatever the client sent: no folders, no leading dots, only [A-Za-z0-9._-]."""
    base = PurePosixPath(unicodedata.normalize("NFKC", name or "").replace("\\", "/")).name
    base = _UNSAFE.sub("_", base).lstrip("._-")
    stem, dot, suffix = base.rpartition(".")
    if not dot:
        stem, suffix = base, ""
    stem = stem.rstrip("._-")[: _MAX_NAME - len(suffix) - 1] or "upload"
    return f"{stem}.{suffix}" if suffix else stem


def save_upload(stream: BinaryIO, name: str, folder: Path, max_bytes: int) -> Path:
    """Copy an upload to `folder/<content hash>/<safe name>`, refusing unknown types and oversized files.

    Files of the same name with other contents land in other folders, so none replaces another; the
    same file uploaded again lands on itself (and is then unchanged in the index). The file is on disk
    (fsynced) when this returns.
    """
    filename = safe_filename(name)
    suffix = Path(filename).suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        allowed = " ".join(sorted(SUPPORTED_SUFFIXES))
        raise UploadRejected(f"unsupported file type {suffix or '(none)'!r}: upload one of {allowed}")
    folder.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(dir=folder, prefix=".upload-")
    try:
        written, digest = 0, hashlib.sha256()
        with os.fdopen(descriptor, "wb") as out:
            while block := stream.read(1 << 20):
                written += len(block)
                if written > max_bytes:
                    raise UploadRejected(
                        f"file is larger than the {max_bytes / 2**20:g} MiB limit (setting max_upload_mb)"
                    )
                digest.update(block)
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
        if written == 0:
            raise UploadRejected("file is empty")
        target = folder.resolve() / digest.hexdigest()[:_CONTENT_FOLDER] / filename
        target.parent.mkdir(exist_ok=True)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def delete_upload(path: Path, folder: Path) -> bool:
    """Delete a file saved by `save_upload` (and its folder once empty); False for files outside `folder`."""
    path, folder = path.resolve(), folder.resolve()
    if not path.is_relative_to(folder) or path == folder:
        return False
    path.unlink(missing_ok=True)
    if path.parent != folder:
        with contextlib.suppress(OSError):  # other files still in it
            path.parent.rmdir()
    return True
