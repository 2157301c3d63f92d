"""The parse pool: every reply is checked against the file it was asked for, so no file's text is ever
stored under another file's path."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from rag.parsers import ParseLimits, read_file
from rag.parsers.common import SourceFile
from rag.parsers.pool import Parsed, ParsePool, _Worker


def _files(folder: Path, count: int) -> list[SourceFile]:
    files = []
    for n in range(count):
        path = folder / f"file{n}.txt"
        path.write_text(f"This is the text of file number {n}.")
        files.append(read_file(path, str(path), 2**20))
    return files


def _with_file_swapped(message: Any, file: SourceFile, other: SourceFile) -> Any:
    """The request `message` (whatever its form) as if it had been sent for `other` instead of `file`."""
    if isinstance(message, SourceFile):
        return other
    if isinstance(message, tuple):
        swapped = {id(file): other, id(file.source): other.source}
        return tuple(swapped.get(id(part), part) for part in message)
    raise AssertionError(f"unexpected request {message!r}")


@pytest.mark.parametrize("workers_out_of_step", [1, 2])
def test_a_stale_reply_is_never_attributed_to_another_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers_out_of_step: int
) -> None:
    """The first worker(s) started are each sent a leftover request (for a file of an earlier, timed-out
    batch) just before their first real one: its reply arrives first and must not become that file's, nor
    shift the following replies onto the neighbouring files. Once out of step, the file is tried again on a
    fresh worker; twice, it is refused with a line that says so."""
    files = _files(tmp_path, 4)
    leftover_path = tmp_path / "leftover.txt"
    leftover_path.write_text("Text left over from a file that timed out earlier.")
    leftover = read_file(leftover_path, str(leftover_path), 2**20)
    started = _Worker.__init__
    injected: list[str] = []

    def start_out_of_step(self: _Worker, *args: Any, **kwargs: Any) -> None:
        started(self, *args, **kwargs)
        if len(injected) >= workers_out_of_step:
            return
        send = self.conn.send
        sent: list[Any] = []

        def send_after_a_leftover(message: Any) -> None:
            if not sent:
                parts = message if isinstance(message, tuple) else (message,)
                file = next(part for part in parts if isinstance(part, SourceFile))
                send(_with_file_swapped(message, file, leftover))
                injected.append(file.source)
            send(message)
            sent.append(message)

        self.conn.send = send_after_a_leftover  # type: ignore[method-assign]

    monkeypatch.setattr(_Worker, "__init__", start_out_of_step)
    pool: ParsePool[str] = ParsePool(ParseLimits.from_settings(), workers=1)
    results = list(pool.parse_all((file.source, file) for file in files))
    assert injected == [files[0].source] * workers_out_of_step  # the stale replies were provoked
    assert [key for key, _ in results] == [file.source for file in files]
    for key, parsed in results:
        if workers_out_of_step == 2 and key == files[0].source:
            assert isinstance(parsed, str) and parsed.startswith(
                "refused: its parse worker answered out of step"
            )
            continue
        assert isinstance(parsed, Parsed), f"{key}: {parsed}"
        number = Path(key).stem.removeprefix("file")
        assert [document.text for document in parsed.documents] == [
            f"This is the text of file number {number}."
        ]
