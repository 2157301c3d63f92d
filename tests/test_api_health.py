"""`health_status` reads only the facade's public state: models, index, queue, API keys (fast: fakes)."""

from __future__ import annotations

from pathlib import Path

from fakes import BagOfWordsEmbedder, ScriptedGenerator

from rag.api.health import health_status
from rag.api.queue import AnswerQueue
from rag.assistant import Assistant
from rag.config import Settings


def test_no_index_says_what_to_do(tmp_path: Path) -> None:
    assistant = Assistant(Settings(index_dir=tmp_path / "index"), embedder=BagOfWordsEmbedder())
    status = health_status(assistant, AnswerQueue(2))
    assert status["status"] == "no_index" and status["index"] is None and "rag ingest" in status["detail"]
    assert status["generator_loaded"] is False and status["api_keys_required"] is False
    assert status["queue"] == {"admitted": 0, "capacity": 3}


def test_index_and_loaded_generator(tmp_path: Path) -> None:
    (tmp_path / "bread.txt").write_text("Bread rises because yeast ferments.\n")
    settings = Settings(index_dir=tmp_path / "index", api_keys=["secret"])
    assistant = Assistant(settings, embedder=BagOfWordsEmbedder(), generator=ScriptedGenerator())
    assistant.ingest([tmp_path / "bread.txt"])
    status = health_status(assistant, AnswerQueue(0))
    assert status["status"] == "ok" and status["index"]["documents"] == 1 and status["index"]["chunks"] == 1
    assert status["generator_loaded"] is True and status["api_keys_required"] is True
