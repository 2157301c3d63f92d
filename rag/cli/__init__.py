"""The `rag` command line: a thin shell over the Assistant and the benchmark runners.

Each command lives in its own module and uses `common`; this module only assembles the app.
"""

from __future__ import annotations

import logging
from typing import Annotated

import typer

from rag import __version__
from rag.cli import ask, check, ingest, serve
from rag.cli.common import out
from rag.cli.docs import docs_app
from rag.cli.eval import eval_app

app = typer.Typer(
    help="Answer questions from your documents, citing the exact passages used. Local and offline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"rag {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Show the version and exit.")
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more detail.")] = False,
) -> None:
    """Answer questions from your documents, citing the exact passages used."""
    logging.basicConfig(
        level=logging.INFO if verbose else logging.WARNING, format="%(levelname)s %(message)s"
    )
    if not verbose:
        for noisy in ("sentence_transformers", "transformers", "httpx"):
            logging.getLogger(noisy).setLevel(logging.ERROR)


app.command("ingest")(ingest.ingest)
app.command("ask")(ask.ask)
app.command("serve")(serve.serve)
app.command("check")(check.check)
app.add_typer(docs_app, name="docs")
app.add_typer(eval_app, name="eval")
