"""Request and response models of the JSON API (they also make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from rag.types import Answer, Passage


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain something other than spaces")
    return value


class Turn(BaseModel):
    """An earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(..., max_length=16000)


class AnswerRequest(BaseModel):
    """A question to answer from the index, with the conversation so far."""

    question: str = Field(..., min_length=1, max_length=4000, description="The question.")
    k: int | None = Field(None, ge=1, le=50, description="Passages to retrieve (default: setting top_k).")
    history: list[Turn] = Field(
        default_factory=list,
        max_length=50,
        description="Earlier turns, oldest first, for follow-up questions.",
    )

    _question = field_validator("question")(_not_blank)


class SearchRequest(BaseModel):
    """A query to search the index with, without the language model."""

    query: str = Field(..., min_length=1, max_length=4000)
    k: int | None = Field(None, ge=1, le=50, description="Passages to return (default: setting top_k).")

    _query = field_validator("query")(_not_blank)


class PassageModel(BaseModel):
    document: str = Field(description="Document id (its source path, or its corpus id).")
    title: str
    source: str
    page: int | None
    start: int = Field(description="Character offset where the passage starts in the document text.")
    end: int
    text: str
    score: float = Field(description="Retrieval score.")


class CitationModel(BaseModel):
    n: int = Field(description="The number the answer cites, as in [n].")
    document: str = Field(description="Document id (its source path, or its corpus id).")
    title: str
    page: int | None = Field(description="Page of the passage (PDF), or null.")
    start: int = Field(description="Character offset where the passage starts in the document text.")
    end: int = Field(description="Character offset where the passage ends.")
    quote: str = Field(description="The cited passage.")
    score: float = Field(description="Retrieval score.")


class SentenceModel(BaseModel):
    text: str
    citations: list[int]
    supported: bool | None = Field(
        description="Whether the cited passages support the sentence (null: unchecked)."
    )
    support: float | None


class AnswerResponse(BaseModel):
    """The answer as `rag ask --json` prints it, plus the retrieved passages."""

    model_config = ConfigDict(extra="allow")

    answer: str
    abstained: bool = Field(description="True when the documents do not hold the answer.")
    citations: list[CitationModel]
    timings: dict[str, float]
    sentences: list[SentenceModel] | None = Field(None, description="Per-sentence support, when checked.")
    refusal_probability: float | None = Field(
        None,
        description="The model's own probability (0..1) of replying that the documents lack the answer; "
        "the answer abstains from `refusal_threshold` on. Null when not measured (extractive mode, gate).",
    )
    passages: list[PassageModel] = Field(
        description="The passages retrieved (the nearest ones on abstention)."
    )


class SearchResponse(BaseModel):
    passages: list[PassageModel]


class DocumentModel(BaseModel):
    id: str
    title: str
    file_path: str
    chunks: int
    characters: int


class DocumentContext(BaseModel):
    """A span of a document's text with the text around it, to show a cited passage in place."""

    document: str
    title: str
    page: int | None
    start: int
    end: int
    before: str = Field(description="Text just before the span (up to `window` characters).")
    passage: str = Field(description="The span itself.")
    after: str = Field(description="Text just after the span.")
    context_start: int
    context_end: int
    length: int = Field(description="Length of the whole document text.")


class RemovedResponse(BaseModel):
    removed: list[str] = Field(description="Files removed from the index.")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """OpenAI's chat completion request; sampling fields are accepted and ignored (the settings rule)."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=100)
    stream: bool = False


def passage_dict(passage: Passage) -> dict[str, Any]:
    chunk = passage.chunk
    return {
        "document": chunk.doc_id,
        "title": passage.title,
        "source": passage.source,
        "page": chunk.page,
        "start": chunk.start,
        "end": chunk.end,
        "text": chunk.text,
        "score": round(float(passage.score), 4),
    }


def answer_payload(answer: Answer) -> dict[str, Any]:
    """`Answer.to_dict()` (whatever fields it grows) plus the retrieved passages."""
    payload = answer.to_dict()
    payload["passages"] = [passage_dict(p) for p in answer.passages]
    return payload
