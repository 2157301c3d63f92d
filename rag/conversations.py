"""Chat conversations kept in SQLite beside the index: titled, ordered messages, each answer with its
citations, so a reload or another device shows the same conversation and follow-ups continue it."""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rag.errors import InvalidInputError, RagError

CONVERSATIONS_FILE = "conversations.sqlite"
"""The store's file, in the index folder (beside `CURRENT`; index generations never touch it)."""

TITLE_MAX_CHARS = 120
"""Longest conversation title; a new conversation is titled with its first question, cut to this."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    created REAL NOT NULL,
    updated REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    conversation_id TEXT NOT NULL REFERENCES conversations(id) ON DELETE CASCADE,
    ord INTEGER NOT NULL,
    role TEXT NOT NULL,
    content TEXT NOT NULL,
    answer TEXT,
    stopped INTEGER NOT NULL DEFAULT 0,
    created REAL NOT NULL,
    PRIMARY KEY (conversation_id, ord)
);
"""


class ConversationNotFoundError(RagError):
    """No conversation of that id."""

    status_code = 404


@dataclass(frozen=True)
class Message:
    """A message of a conversation; an assistant's keeps the whole answer payload (citations, sentences,
    passages) so the chat shows it again as it was. `stopped`: the reader stopped it while it was written."""

    role: Literal["user", "assistant"]
    content: str
    created: float
    answer: dict[str, Any] | None = None
    stopped: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "content": self.content,
            "created": self.created,
            "answer": self.answer,
            "stopped": self.stopped,
        }


@dataclass(frozen=True)
class Conversation:
    id: str
    title: str
    created: float
    updated: float
    message_count: int = 0
    messages: list[Message] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "created": self.created,
            "updated": self.updated,
            "messages": self.message_count,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.summary(), "messages": [m.to_dict() for m in self.messages]}

    def history(self) -> list[dict[str, str]]:
        """The earlier turns as the answering path takes them (stopped answers left out)."""
        turns: list[dict[str, str]] = []
        for message in self.messages:
            if message.stopped:
                if turns and turns[-1]["role"] == "user":
                    turns.pop()
                continue
            turns.append({"role": message.role, "content": message.content})
        return turns

    def to_markdown(self) -> str:
        """The conversation as Markdown: each question, its answer, and the answer's numbered sources."""
        lines = [f"# {self.title}", ""]
        for message in self.messages:
            if message.role == "user":
                lines += [f"## {_one_line(message.content)}", ""]
                if "\n" in message.content.strip():
                    lines += ["> " + line for line in message.content.strip().splitlines()] + [""]
                continue
            lines += [message.content.strip() + (" *(stopped)*" if message.stopped else ""), ""]
            citations = (message.answer or {}).get("citations") or []
            if citations:
                lines += ["Sources:", ""]
                for citation in citations:
                    where = citation["document"]
                    if citation.get("page") is not None:
                        where += f", page {citation['page']}"
                    lines.append(f"{citation['n']}. {citation['title']} ({where})")
                lines.append("")
        return "\n".join(lines).rstrip() + "\n"


def _not_found(conversation_id: str) -> ConversationNotFoundError:
    return ConversationNotFoundError(f"No conversation {conversation_id!r}: it may have been deleted.")


def _one_line(text: str) -> str:
    return " ".join(text.split())


def title_of(question: str) -> str:
    """A title from a question: on one line, cut at a word to `TITLE_MAX_CHARS`."""
    title = _one_line(question)
    if len(title) <= TITLE_MAX_CHARS:
        return title
    return title[: TITLE_MAX_CHARS - 1].rsplit(" ", 1)[0] + "…"


class ConversationStore:
    """Conversations in one SQLite file, made by the first conversation (a server that is never asked
    anything leaves no file, nor an index folder); safe to share between the server's threads."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @property
    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA foreign_keys = ON")
            db.execute("PRAGMA journal_mode = WAL")
            db.executescript(_SCHEMA)
            self._connection = db
        return self._connection

    def _missing(self) -> bool:
        """Whether no conversation was ever stored (then reading creates nothing)."""
        return self._connection is None and not self.path.exists()

    @classmethod
    def beside(cls, index_dir: Path) -> ConversationStore:
        """The store of the index in `index_dir`."""
        return cls(index_dir / CONVERSATIONS_FILE)

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def create(self, title: str = "New conversation") -> Conversation:
        now = time.time()
        conversation = Conversation(uuid.uuid4().hex, title_of(title) or "New conversation", now, now)
        with self._lock:
            self._db.execute(
                "INSERT INTO conversations (id, title, created, updated) VALUES (?, ?, ?, ?)",
                (conversation.id, conversation.title, now, now),
            )
        return conversation

    def list(self) -> list[Conversation]:
        """Every conversation, the most recently updated first (without their messages)."""
        if self._missing():
            return []
        with self._lock:
            rows = self._db.execute(
                "SELECT c.*, (SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) AS n "
                "FROM conversations c ORDER BY updated DESC"
            ).fetchall()
        return [Conversation(r["id"], r["title"], r["created"], r["updated"], r["n"]) for r in rows]

    def get(self, conversation_id: str) -> Conversation:
        """A conversation with its messages, or ConversationNotFoundError."""
        if self._missing():
            raise _not_found(conversation_id)
        with self._lock:
            row = self._db.execute("SELECT * FROM conversations WHERE id = ?", (conversation_id,)).fetchone()
            rows = self._db.execute(
                "SELECT * FROM messages WHERE conversation_id = ? ORDER BY ord", (conversation_id,)
            ).fetchall()
        if row is None:
            raise _not_found(conversation_id)
        messages = [
            Message(
                r["role"],
                r["content"],
                r["created"],
                json.loads(r["answer"]) if r["answer"] else None,
                bool(r["stopped"]),
            )
            for r in rows
        ]
        return Conversation(row["id"], row["title"], row["created"], row["updated"], len(messages), messages)

    def rename(self, conversation_id: str, title: str) -> Conversation:
        title = title_of(title)
        if not title:
            raise InvalidInputError("A conversation's title cannot be blank.")
        if self._missing():
            raise _not_found(conversation_id)
        with self._lock:
            found = self._db.execute(
                "UPDATE conversations SET title = ? WHERE id = ?", (title, conversation_id)
            ).rowcount
        if not found:
            raise _not_found(conversation_id)
        return self.get(conversation_id)

    def delete(self, conversation_id: str) -> None:
        if self._missing():
            raise _not_found(conversation_id)
        with self._lock:
            found = self._db.execute("DELETE FROM conversations WHERE id = ?", (conversation_id,)).rowcount
        if not found:
            raise _not_found(conversation_id)

    def add_exchange(
        self, conversation_id: str, question: str, answer: str, payload: dict[str, Any] | None, stopped: bool
    ) -> None:
        """Append a question and its answer (`payload`: the API's answer object; None when stopped early)."""
        now = time.time()
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute(
                    "SELECT COALESCE(MAX(ord), -1) + 1 FROM messages WHERE conversation_id = ?",
                    (conversation_id,),
                ).fetchone()
                if not self._db.execute(
                    "UPDATE conversations SET updated = ? WHERE id = ?", (now, conversation_id)
                ).rowcount:
                    raise _not_found(conversation_id)
                first = row[0]
                self._db.executemany(
                    "INSERT INTO messages (conversation_id, ord, role, content, answer, stopped, created) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    [
                        (conversation_id, first, "user", question, None, 0, now),
                        (
                            conversation_id,
                            first + 1,
                            "assistant",
                            answer,
                            None if payload is None else json.dumps(payload, ensure_ascii=False),
                            int(stopped),
                            now,
                        ),
                    ],
                )
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
