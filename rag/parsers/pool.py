"""Parsing (and chunking) in worker processes, each file under a time budget and every worker under a memory
cap: a file that exceeds either is stopped with its worker and reported, and the rest of the batch goes on.

Workers run ahead of the caller, so files are parsed while the ingest embeds the ones before them; results
come back in the order the files were given. Every request and reply is tagged with the file's position
and path; a reply whose tag is not the file's own is discarded with its worker and the file tried once more,
so one file's text is never stored under another's path. Workers are forked from a clean forkserver process
(never from the caller, whose threads and models a fork would copy).
"""

from __future__ import annotations

import contextlib
import copy
import logging
import multiprocessing
import os
import pickle
import queue
import resource
import signal
import sys
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from typing import Any, Generic, TypeVar

from rag.chunking import Chunker
from rag.errors import ParseError
from rag.parsers import parse
from rag.parsers.common import SourceFile
from rag.parsers.limits import ParseLimits
from rag.types import Chunk, Document

K = TypeVar("K")

_MIB = 2**20
_Results = queue.Queue  # of (kind, value): ("item", (key, outcome)), ("error", exception) or ("done", None)
_POLL_SECONDS = 0.5
_STARTUP_SECONDS = 120
_PORTABLE_CHUNKER_BYTES = 16 * _MIB
_TRIES = 2  # a file whose worker answers out of step is tried once more, on a fresh worker, then refused
_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Parsed:
    """A file's documents and, when the pool chunks, their chunks (in document order)."""

    documents: list[Document]
    chunks: list[Chunk] | None


@dataclass(frozen=True)
class ChunkLimit:
    """The chunker workers use and the most chunks one document may become (setting
    max_chunks_per_document)."""

    chunker: Chunker
    max_chunks_per_document: int


def parse_in_worker(file: SourceFile, limits: ParseLimits, chunking: ChunkLimit | None) -> Parsed:
    """What a worker does with one file: parse it within the limits, then chunk it (ParseError: why not)."""
    documents = parse(file, limits)
    if chunking is None:
        return Parsed(documents, None)
    return Parsed(documents, chunk_documents(file.source, documents, chunking))


def chunk_documents(source: str, documents: list[Document], chunking: ChunkLimit) -> list[Chunk]:
    """Every document's chunks; a document cut into more than the chunk limit refuses the file."""
    chunks: list[Chunk] = []
    for document in documents:
        pieces = chunking.chunker.chunk(document)
        if len(pieces) > chunking.max_chunks_per_document:
            limit = chunking.max_chunks_per_document
            name = "" if document.id == source else f"document {document.id!r}: "
            raise ParseError(
                source,
                f"{name}{len(pieces):,} chunks, more than the {limit:,} chunks limit "
                "(setting max_chunks_per_document)",
            )
        chunks.extend(pieces)
    return chunks


def _worker(conn: Connection, limits: ParseLimits, chunking: ChunkLimit | None) -> None:
    """A worker's life: cap its memory, then parse each file it is sent until told to stop."""
    cap = limits.max_parse_memory_mb * _MIB
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the caller, which stops the workers
    # A parser library that dies out of memory prints its own backtrace; the refusal line says it all.
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 2)
    os.close(null)
    conn.send("ready")  # a file's time budget starts once the worker is up, not while it starts
    while True:
        try:
            request = conn.recv()
        except (EOFError, OSError):
            return
        if request is None:
            return
        position, source, file = request  # every reply carries the tag (position, path) of its request
        try:
            reply: Parsed | str = parse_in_worker(file, limits, chunking)
        except ParseError as exc:
            reply = exc.reason
        except MemoryError:
            reply = f"needs more memory than {limits.describe('max_parse_memory_mb')}"
        except RecursionError:
            reply = "nested too deeply to parse"
        except Exception as exc:  # noqa: BLE001  (a parser library's own bug must not stop the ingest)
            reply = f"the parser failed: {type(exc).__name__}: {str(exc).strip()[:160]}"
        try:
            conn.send((position, source, reply))
        except MemoryError:
            conn.send((position, source, f"needs more memory than {limits.describe('max_parse_memory_mb')}"))
        except (BrokenPipeError, OSError):
            return


def _context() -> multiprocessing.context.BaseContext:
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(["rag.parsers.pool"])
    return context


@contextlib.contextmanager
def _main_script_hidden() -> Iterator[None]:
    """Workers need nothing from the caller's main script: hide it while one starts, so multiprocessing does
    not run it again in the worker (a script without an `if __name__ == "__main__":` guard would start
    over there)."""
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved = {name: main.__dict__[name] for name in ("__file__", "__spec__") if name in main.__dict__}
    main.__dict__.pop("__file__", None)
    main.__dict__["__spec__"] = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
        if "__spec__" not in saved:
            main.__dict__.pop("__spec__", None)


@dataclass(frozen=True)
class _Task:
    """A file sent to a worker: its position in the batch and path (the tag its reply must carry), the file,
    how many times it has been sent, and when its time is up."""

    position: int
    file: SourceFile
    tries: int
    deadline: float = 0.0

    def tag(self) -> tuple[int, str]:
        return (self.position, self.file.source)


class _Worker:
    """One worker process and the file it is parsing, if any."""

    def __init__(self, limits: ParseLimits, chunking: ChunkLimit | None) -> None:
        ours, theirs = multiprocessing.Pipe()
        self.process = _context().Process(target=_worker, args=(theirs, limits, chunking), daemon=True)
        with _main_script_hidden():
            self.process.start()
        theirs.close()
        self.conn = ours
        self.task: _Task | None = None
        if not (ours.poll(_STARTUP_SECONDS) and ours.recv() == "ready"):
            self.stop(kill=True)
            raise RuntimeError(f"a parse worker did not start within {_STARTUP_SECONDS} s")

    def stop(self, *, kill: bool = False) -> None:
        if not kill:
            try:
                self.conn.send(None)
            except OSError:
                kill = True
            self.process.join(timeout=2)
        if kill or self.process.is_alive():
            self.process.kill()
            self.process.join(timeout=5)
        self.conn.close()


class _Stop(Exception):
    """The consumer went away: the feeding thread stops."""


class ParsePool(Generic[K]):
    """Parses files in `workers` processes within `limits`, in order, ahead of the consumer."""

    def __init__(
        self, limits: ParseLimits, *, workers: int = 1, chunking: ChunkLimit | None = None, ahead: int = 4
    ) -> None:
        self.limits = limits
        self.workers = max(workers, 1)
        self.chunking = chunking
        self.ahead = max(ahead, self.workers)

    def parse_all(
        self, items: Iterable[tuple[K, SourceFile | None]]
    ) -> Iterator[tuple[K, Parsed | str | None]]:
        """For each (key, file) in order: (key, what parsing the file gave, or why it failed); None for a
        key given without a file (passed through in order, unparsed)."""
        results: _Results = queue.Queue(maxsize=self.ahead)
        stopping = threading.Event()
        feeder = threading.Thread(
            target=self._feed, args=(iter(items), results, stopping), name="rag-parse-feeder", daemon=True
        )
        feeder.start()
        try:
            while True:
                kind, value = results.get()
                if kind == "done":
                    return
                if kind == "error":
                    raise value  # type: ignore[misc]
                yield value  # type: ignore[misc]
        finally:
            stopping.set()
            while feeder.is_alive():
                with contextlib.suppress(queue.Empty):
                    results.get(timeout=0.1)
            feeder.join()

    def _feed(
        self,
        items: Iterator[tuple[K, SourceFile | None]],
        results: _Results,
        stopping: threading.Event,
    ) -> None:
        workers: list[_Worker] = []
        try:
            self._run(items, results, stopping, workers)
            self._put(results, stopping, ("done", None))
        except _Stop:
            pass
        except BaseException as exc:  # noqa: BLE001  (handed to the consumer, which raises it)
            with contextlib.suppress(_Stop):
                self._put(results, stopping, ("error", exc))
        finally:
            for worker in workers:
                worker.stop(kill=worker.task is not None)

    def _run(
        self,
        items: Iterator[tuple[K, SourceFile | None]],
        results: _Results,
        stopping: threading.Event,
        workers: list[_Worker],
    ) -> None:
        waiting: deque[_Task] = deque()
        keys: dict[int, K] = {}
        done: dict[int, Parsed | str | None] = {}
        taken = emitted = 0
        exhausted = False
        while True:
            while not exhausted and taken - emitted < self.ahead:
                try:
                    key, file = next(items)
                except StopIteration:
                    exhausted = True
                    break
                keys[taken] = key
                if file is None:
                    done[taken] = None
                else:
                    waiting.append(_Task(taken, file, tries=1))
                taken += 1
            while waiting:
                idle = next((w for w in workers if w.task is None), None)
                if idle is None and len(workers) < self.workers:
                    idle = _Worker(self.limits, self.chunking)
                    workers.append(idle)
                if idle is None:
                    break
                task = waiting.popleft()
                idle.task = replace(task, deadline=time.monotonic() + self.limits.parse_timeout_seconds)
                try:
                    idle.conn.send((*task.tag(), task.file))
                except OSError:  # the worker is gone (killed from outside): the file fails, a new one starts
                    done[task.position] = self._death(idle)
                    idle.stop(kill=True)
                    workers.remove(idle)
            while emitted in done:
                self._put(results, stopping, ("item", (keys.pop(emitted), done.pop(emitted))))
                emitted += 1
            if exhausted and emitted == taken:
                return
            busy = [w for w in workers if w.task is not None]
            if not busy:
                continue
            deadline = min(w.task.deadline for w in busy if w.task is not None)
            pause = max(0.0, min(deadline - time.monotonic(), _POLL_SECONDS))
            ready = wait([w.conn for w in busy], timeout=pause)
            if stopping.is_set():
                raise _Stop
            for worker in busy:
                task = worker.task
                assert task is not None
                position = task.position
                if worker.conn in ready:
                    try:
                        reply = worker.conn.recv()
                    except (EOFError, OSError):
                        done[position] = self._death(worker)
                    else:
                        if isinstance(reply, tuple) and len(reply) == 3 and reply[:2] == task.tag():
                            done[position] = reply[2]
                            worker.task = None
                            continue
                        refusal = self._out_of_step(task, reply)
                        if refusal is None:
                            waiting.appendleft(replace(task, tries=task.tries + 1))
                        else:
                            done[position] = refusal
                elif time.monotonic() >= task.deadline:
                    limit = self.limits.describe("parse_timeout_seconds")
                    done[position] = f"stopped: parsing took longer than {limit}"
                else:
                    continue
                worker.stop(kill=True)
                workers.remove(worker)

    @staticmethod
    def _out_of_step(task: _Task, reply: object) -> str | None:
        """A reply that is not for the file its worker was sent is discarded (its worker is stopped): None
        when the file is to be tried again, else why it is refused."""
        if isinstance(reply, tuple):
            what = f"a reply tagged {reply[:2]!r}"[:200]
        else:
            what = f"an untagged reply ({reply!r})"[:200] if isinstance(reply, str) else "an untagged reply"
        _log.warning(
            "discarded %s from a parse worker that was parsing %s (#%d)",
            what,
            task.file.source,
            task.position,
        )
        if task.tries < _TRIES:
            return None
        return (
            f"refused: its parse worker answered out of step {task.tries} times (last with {what}, not "
            f"this file's tag {task.tag()!r}), so nothing is stored under this file's path"
        )

    def _death(self, worker: _Worker) -> str:
        """Why a worker that died while parsing gave no answer: its memory cap (or a crash of the parser)."""
        worker.process.join(timeout=5)
        code = worker.process.exitcode
        how = f"signal {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
        limit = self.limits.describe("max_parse_memory_mb")
        return f"the parser stopped ({how}), likely out of memory under {limit}"

    @staticmethod
    def _put(results: _Results, stopping: threading.Event, entry: tuple[str, object]) -> None:
        while True:
            if stopping.is_set():
                raise _Stop
            try:
                results.put(entry, timeout=_POLL_SECONDS)
                return
            except queue.Full:
                continue


class _TokenizerCall:
    """A bare `tokenizers.Tokenizer` called the way a Hugging Face tokenizer is (what counters call)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.unbounded = False  # the copy in a worker drops truncation and padding before its first call

    def __call__(
        self,
        text: str | list[str],
        *,
        add_special_tokens: bool = False,
        truncation: bool = False,
        return_offsets_mapping: bool = False,
    ) -> dict[str, Any]:
        if not self.unbounded:
            self.backend.no_truncation()
            self.backend.no_padding()
            self.unbounded = True
        if isinstance(text, list):
            encodings = self.backend.encode_batch(text, add_special_tokens=add_special_tokens)
            return {"input_ids": [e.ids for e in encodings]}
        encoding = self.backend.encode(text, add_special_tokens=add_special_tokens)
        return {"input_ids": encoding.ids, "offset_mapping": encoding.offsets}


class TokenizerCounter:
    """An embedder's own `count` and `split` over its bare tokenizer: the same chunks, without the model, so
    it is cheap to send to a worker."""

    def __init__(self, counting: type, backend: Any) -> None:
        self.counting = counting
        self.tokenizer = _TokenizerCall(backend)

    def count(self, texts: Sequence[str]) -> list[int]:
        return self.counting.count(self, texts)

    def split(self, text: str, max_tokens: int) -> list[tuple[int, int]]:
        return self.counting.split(self, text, max_tokens)


def portable_chunker(chunker: Chunker) -> Chunker | None:
    """The chunker as a worker process can hold it: an embedder's counter is replaced by its bare tokenizer;
    None when its counter cannot be sent (the caller then chunks itself)."""
    counter = chunker.counter
    backend = getattr(getattr(counter, "tokenizer", None), "backend_tokenizer", None)
    if type(counter).__module__ == "__main__":
        return None  # a worker cannot import the caller's main script
    portable = copy.copy(chunker)
    if backend is not None:
        portable.counter = TokenizerCounter(type(counter), backend)
    try:
        size = len(pickle.dumps(portable))
    except Exception:  # noqa: BLE001  (any counter that cannot be pickled is chunked in the caller)
        return None
    return portable if size <= _PORTABLE_CHUNKER_BYTES else None
