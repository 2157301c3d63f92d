"""What every command shares: the consoles, settings from flags, the assistant, one-line errors."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer
from pydantic import ValidationError
from rich.console import Console

from rag.config import Settings
from rag.errors import RagError

if TYPE_CHECKING:
    from rag.assistant import Assistant

out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)

IndexOption = Annotated[
    Path | None, typer.Option("--index", help="Index folder (default: setting index_dir, index/default).")
]
CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection",
        "-c",
        help="Collection: an index folder of collections_dir (default: the default collection, index_dir).",
    ),
]


def settings_from_flags(*, collection: str | None = None, **flags: Any) -> Settings:
    """Settings from rag.toml and RAG_* overridden by the flags that were given, for `collection` when
    given; exit 2 when invalid."""
    if collection is not None and flags.get("index_dir") is not None:
        fail("Give --index or --collection, not both: a collection is an index folder of collections_dir.")
    try:
        settings = Settings(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        err.print(f"[red]error:[/red] invalid setting: {problems}")
        raise typer.Exit(2) from None
    if collection is None:
        return settings
    from rag.collections import collection_settings

    with reported_errors():
        return collection_settings(settings, collection)


def open_assistant(settings: Settings) -> Assistant:
    """The assistant for these settings (its module is imported here, on use: it loads the model
    libraries, a second that `rag --help` need not wait)."""
    from rag.assistant import Assistant

    return Assistant(settings)


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn an error the user can cause into one line on stderr and exit code 2, without a traceback."""
    try:
        yield
    except RagError as exc:
        fail(str(exc))


def fail(message: str) -> NoReturn:
    """Print `message` as one error line and exit with code 2."""
    err.print(f"[red]error:[/red] {message}", highlight=False, markup=True, soft_wrap=True)
    raise typer.Exit(2)


def invoked_command() -> str:
    """The command line as typed, for reports that say how they were made."""
    return "rag " + " ".join(shlex.quote(a) for a in sys.argv[1:])
