"""`rag serve`: the chat pages and the JSON API, with the language model loaded before the first question."""

from __future__ import annotations

from typing import Annotated

import typer

from rag.cli.common import IndexOption, err, open_assistant, reported_errors, settings_from_flags


def serve(
    index: IndexOption = None,
    host: Annotated[str | None, typer.Option(help="Address to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8000).")] = None,
) -> None:
    """Serve the chat page and the JSON API."""
    import uvicorn

    from rag.api import create_app
    from rag.integrity import verify_live

    settings = settings_from_flags(index_dir=index, host=host, port=port)
    assistant = open_assistant(settings)
    with reported_errors():
        assistant.index()
        verify_live(settings.index_dir)  # every file of the live generation, so a damaged one is refused now
        err.print("Loading the models and reading the prompt's instructions...", highlight=False)
        assistant.warm_up()  # once, before the first question
    err.print(f"Serving on http://{settings.host}:{settings.port}", highlight=False)
    uvicorn.run(
        create_app(assistant),
        host=settings.host,
        port=settings.port,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
