"""Request and response models of the JSON API (they also make the OpenAPI schema)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, field_validator, model_validator

from rag.types import Answer, Passage


def _not_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must contain something other than spaces")
    return value


TURN_MAX_CHARS = 16000
"""Longest earlier message of a conversation, in characters."""


class Turn(BaseModel):
    """An earlier message of the conversation."""

    role: Literal["user", "assistant"]
    content: str = Field(..., max_length=TURN_MAX_CHARS)


class PassageScope(BaseModel):
    """Which passages a question may use: the documents, the retrieval mode (per question)."""

    documents: list[str] | None = Field(
        None,
        min_length=1,
        max_length=200,
        description="Search only these documents: ids or sources as `GET /api/documents` lists them "
        "(an unknown one is a 400). Default: every document of the collection.",
    )
    retrieval_mode: Literal["dense", "bm25", "hybrid"] | None = Field(
        None,
        description="How passages are found for this question: embeddings (dense), BM25 (bm25) or both "
        "fused (hybrid). Default: setting retrieval_mode.",
    )


class QuestionScope(PassageScope):
    """Where a question is searched: the collection, the documents, the retrieval mode (per question)."""

    collection: str | None = Field(
        None,
        max_length=64,
        description="Collection to search, as `GET /api/collections` lists them (default: the default one).",
    )


class AnswerRequest(QuestionScope):
    """A question to answer from the index, with the conversation so far and per-question options."""

    question: str = Field(..., min_length=1, max_length=4000, description="The question.")
    k: int | None = Field(
        None,
        ge=1,
        le=50,
        validation_alias=AliasChoices("k", "top_k"),
        description="Passages to retrieve and give the model (also accepted as `top_k`; default: setting "
        "top_k).",
    )
    grounding_mode: Literal["flag", "strict", "off"] | None = Field(
        None,
        description="Support check of the answer's sentences for this question: flag marks unsupported "
        "ones, strict removes them, off skips the check. Default: setting grounding_mode.",
    )
    history: list[Turn] = Field(
        default_factory=list,
        max_length=50,
        description="Earlier turns, oldest first, for follow-up questions.",
    )
    conversation_id: str | None = Field(
        None,
        max_length=64,
        description="A stored conversation (`POST /api/conversations`) to continue: its turns are the "
        "history (unless `history` is given) and the question and answer are appended to it.",
    )

    _question = field_validator("question")(_not_blank)


class SearchRequest(QuestionScope):
    """A question to search the index with, without the language model."""

    question: str = Field(
        ...,
        min_length=1,
        max_length=4000,
        validation_alias=AliasChoices("question", "query"),
        description="The question, as `/api/answer` takes it (`query`, its former name, is accepted).",
    )
    k: int | None = Field(
        None,
        ge=1,
        le=50,
        validation_alias=AliasChoices("k", "top_k"),
        description="Passages to return (also accepted as `top_k`; default: setting top_k).",
    )

    _question = field_validator("question")(_not_blank)

    @property
    def query(self) -> str:
        """The question (its former name)."""
        return self.question


class PassageModel(BaseModel):
    """A retrieved passage and where it lies in its document."""

    model_config = ConfigDict(extra="forbid")

    document: str = Field(description="Document id (its source path, or its corpus id).")
    title: str
    source: str
    page: int | None
    start: int = Field(description="Character offset where the passage starts in the document text.")
    end: int
    text: str
    heading: str | None = Field(
        None,
        description="The headings the passage lies under, top one first, joined by ' › ' (null: none); "
        "context to show apart from the text.",
    )
    score: float = Field(
        description="Relevance: cosine similarity of the passage to the question (-1..1), whatever the "
        "retrieval mode; the same number as the `score` of a citation of this passage."
    )
    rank_score: float = Field(
        description="Ranking score of the retrieval mode, which orders the passages: cosine similarity "
        "(dense), BM25 (bm25), the fused reciprocal-rank score (hybrid) or the reranker's score. Comparable "
        "only within one response."
    )


class CitationModel(BaseModel):
    """A numbered source the answer cites."""

    model_config = ConfigDict(extra="forbid")

    n: int = Field(description="The number the answer cites, as in [n].")
    document: str = Field(description="Document id (its source path, or its corpus id).")
    title: str
    page: int | None = Field(
        description="Page of the passage (PDF): the one holding most of it when it spans pages; null for "
        "formats without pages."
    )
    page_start: int | None = Field(None, description="First page the passage runs over (PDF), or null.")
    page_end: int | None = Field(None, description="Last page the passage runs over (PDF), or null.")
    start: int = Field(description="Character offset where the passage starts in the document text.")
    end: int = Field(description="Character offset where the passage ends.")
    quote: str = Field(description="The cited passage.")
    score: float = Field(
        description="Relevance: cosine similarity of the passage to the question (what the evidence gate "
        "reads), the same number as the passage's `score`; not the ranking score of the retrieval mode "
        "(`rank_score` of the passage)."
    )


class SentenceModel(BaseModel):
    """One sentence of the answer with the sources it cites and how well they support it."""

    model_config = ConfigDict(extra="forbid")

    text: str
    citations: list[int] = Field(description="The source numbers the sentence cites.")
    attributed: bool = Field(
        description="True when the model left the sentence uncited (or cited passages that do not support "
        "it) and the support checker added the citation of the passage that supports it best."
    )
    supported: bool | None = Field(
        description="Whether the cited passages support the sentence (null: unchecked)."
    )
    support: float | None = Field(description="Support (0..1) of the cited passages (null: unchecked).")
    issues: list[str] = Field(
        default_factory=list,
        description="Why the claim checks found the sentence unsupported: a value no cited passage states, "
        "or a negation or plan of the passage that the sentence drops (empty: none found).",
    )


class AnswerResponse(BaseModel):
    """The answer as `rag ask --json` prints it, plus the retrieved passages."""

    model_config = ConfigDict(extra="forbid")

    answer: str
    abstained: bool = Field(description="True when the documents do not hold the answer.")
    citations: list[CitationModel]
    timings: dict[str, float] = Field(description="Seconds per step, and token counts of the generation.")
    sentences: list[SentenceModel] = Field(
        description="The answer's sentences with their citations and support (empty when abstained)."
    )
    refusal_probability: float | None = Field(
        description="The model's own probability (0..1) of replying that the documents lack the answer; "
        "the answer abstains from `refusal_threshold` on. Null when not measured (extractive mode, gate).",
    )
    limitations: list[str] = Field(
        default_factory=list,
        description="What the model could not do for this answer and why, in plain words (e.g. a model "
        "server that returns no token log-probabilities: no refusal probability); empty when nothing was.",
    )
    confidence: float | None = Field(
        None,
        description="Calibrated probability (0..1) that the answer is right and supported by its passages; "
        "the answer abstains below `min_confidence`. Null when not read (gate, `confidence_signals` off).",
    )
    recovered: bool = Field(
        False,
        description="True when the model said the documents do not answer, the signals said a passage "
        "does, and the answer is that passage's best sentence, taken extractively.",
    )
    passages: list[PassageModel] = Field(
        description="The passages retrieved (the nearest ones on abstention)."
    )


class SearchResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    passages: list[PassageModel]


class DocumentModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    file_path: str
    chunks: int
    characters: int


class CollectionModel(BaseModel):
    """A named collection: one index of its own, chosen per request with `collection` (or `model` in /v1)."""

    model_config = ConfigDict(extra="forbid")

    name: str
    default: bool = Field(description="Whether requests without `collection` use this one.")
    documents: int | None = Field(description="Documents indexed (null: no index yet).")
    chunks: int | None = Field(description="Passages indexed (null: no index yet).")
    updated: float | None = Field(description="Unix time the index last changed (null: no index yet).")


class FileStatusModel(BaseModel):
    """An uploaded file and what became of it."""

    model_config = ConfigDict(extra="forbid")

    name: str
    status: Literal["saved", "rejected", "indexed", "unchanged", "failed"] = Field(
        description="`saved`, then `indexed`, `unchanged` or `failed`; or `rejected` at upload."
    )
    error: str | None
    path: str | None = Field(description="Where the file was saved (null when rejected).")


class JobModel(BaseModel):
    """An ingest job of uploaded files, polled at `/api/jobs/{id}`."""

    model_config = ConfigDict(extra="forbid")

    id: str
    status: Literal["queued", "running", "done", "failed"]
    files: list[FileStatusModel]
    files_total: int = Field(description="Files saved and waiting to be indexed.")
    files_done: int
    chunks_total: int
    chunks_embedded: int
    error: str | None
    created: float = Field(description="Unix time the job was submitted.")
    finished: float | None = Field(description="Unix time the job finished (null while it runs).")
    attempts: int = Field(
        description="Times indexing started: more than 1 when the server stopped during it and resumed it."
    )


class JobRemovedResponse(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str = Field(description="The job forgotten.")
    deleted: list[str] = Field(description="Its files that had failed, deleted from the upload folder.")


class ConversationRename(BaseModel):
    """A conversation's new title."""

    title: str = Field(..., min_length=1, max_length=200)

    _title = field_validator("title")(_not_blank)


class ConversationSummaryModel(BaseModel):
    """A stored conversation, as the chat's sidebar lists it."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    created: float = Field(description="Unix time it was started.")
    updated: float = Field(description="Unix time of its last message.")
    messages: int = Field(description="How many messages it holds.")


class MessageModel(BaseModel):
    """A message of a stored conversation."""

    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant"]
    content: str
    created: float
    answer: dict[str, Any] | None = Field(
        description="The whole answer as `POST /api/answer` returned it (assistant messages; null when "
        "stopped)."
    )
    stopped: bool = Field(description="The reader stopped the answer while it was written.")


class ConversationModel(BaseModel):
    """A stored conversation with its messages, oldest first."""

    model_config = ConfigDict(extra="forbid")

    id: str
    title: str
    created: float
    updated: float
    messages: list[MessageModel]


class DocumentContext(BaseModel):
    """A span of a document's text with the text around it, to show a cited passage in place."""

    model_config = ConfigDict(extra="forbid")

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
    model_config = ConfigDict(extra="forbid")

    removed: list[str] = Field(description="Files removed from the index.")


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(part.get("text", "")) for part in self.content if part.get("type") == "text")
        return self.content or ""


class ChatStreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")

    include_usage: bool = Field(
        False, description="Send a last chunk with the token usage (and no choices) before `[DONE]`."
    )


class ChatCompletionRequest(PassageScope):
    """OpenAI's chat completion request; sampling fields are accepted and ignored (the settings rule).

    System (and developer) messages are added to the prompt as instructions, under the rules of grounding.
    `documents`, `retrieval_mode` and `grounding_mode` are rag's own per-question options (in the
    `openai` client: `extra_body`).
    """

    model_config = ConfigDict(extra="allow")

    model: str | None = Field(
        None,
        description="The collection to answer from, as `GET /v1/models` lists them (default: the default).",
    )
    messages: list[ChatMessage] = Field(..., min_length=1, max_length=100)
    stream: bool = False
    stream_options: ChatStreamOptions | None = None
    grounding_mode: Literal["flag", "strict", "off"] | None = Field(
        None, description="Support check of the answer's sentences (default: setting grounding_mode)."
    )

    @model_validator(mode="after")
    def _earlier_turns_fit(self) -> ChatCompletionRequest:
        """Earlier user and assistant messages become the history, whose turns have a length limit."""
        turns = [(n, m) for n, m in enumerate(self.messages) if m.role in ("user", "assistant")]
        for n, message in turns[:-1]:
            if len(message.text()) > TURN_MAX_CHARS:
                raise ValueError(
                    f"messages[{n}] ({message.role}) holds {len(message.text())} characters; an earlier "
                    f"message of the conversation may hold at most {TURN_MAX_CHARS}"
                )
        return self


class ChatCompletionMessage(BaseModel):
    role: Literal["assistant"]
    content: str


class ChatCompletionChoice(BaseModel):
    index: int
    message: ChatCompletionMessage
    finish_reason: Literal["stop"]


class ChatCompletionUsage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ModelCard(BaseModel):
    """A collection, in the shape of OpenAI's model object."""

    id: str = Field(description="The collection's name: pass it as `model`.")
    object: Literal["model"]
    created: int = Field(description="Unix time the collection's index last changed (0: no index yet).")
    owned_by: str


class ModelList(BaseModel):
    """The collections, in the shape of OpenAI's model list."""

    object: Literal["list"]
    data: list[ModelCard]


class ChatCompletionResponse(BaseModel):
    """OpenAI's chat completion, with the answer's citations and the whole answer (`rag`) added."""

    model_config = ConfigDict(extra="forbid")

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str
    choices: list[ChatCompletionChoice]
    usage: ChatCompletionUsage
    citations: list[CitationModel]
    rag: AnswerResponse = Field(description="The answer as `POST /api/answer` returns it.")


class ErrorDetail(BaseModel):
    type: str = Field(description="The kind of error, e.g. InvalidInputError, NotFound, ServerBusy.")
    message: str = Field(description="What happened and what to do.")


class ErrorResponse(BaseModel):
    """The one error shape of every route."""

    model_config = ConfigDict(extra="forbid")

    error: ErrorDetail


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorResponse, "description": description}
    for status, description in {
        400: "The input cannot be used (the message says why).",
        401: "An API key is required and was missing or wrong.",
        404: "No index, document or job of that name.",
        409: "The index was built with another embedder or format, or the job has not finished.",
        413: "The request body is larger than the limit.",
        422: "The request does not match its schema.",
        503: "The model is busy and the queue is full (retry after `Retry-After` seconds), or unavailable.",
    }.items()
}
"""What any API route may answer instead of its result: every error is an `ErrorResponse`."""


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
        "heading": " › ".join(chunk.heading_path) or None,
        "score": round(float(passage.relevance), 4),
        "rank_score": round(float(passage.score), 4),
    }


def answer_payload(answer: Answer) -> dict[str, Any]:
    """`Answer.to_dict()` (whatever fields it grows) plus the retrieved passages."""
    payload = answer.to_dict()
    payload["passages"] = [passage_dict(p) for p in answer.passages]
    return payload
