"""The errors a user can cause, each with a message that says what happened and what to do."""

from __future__ import annotations


class RagError(Exception):
    """Base of every error the CLI and the API turn into one clear line or JSON error."""

    status_code: int = 400


class InvalidInputError(RagError):
    """A parameter or a question that cannot be used (empty question, k out of range...)."""


class ParseError(RagError):
    """A file that cannot be read as a document: corrupt, empty, binary, oversized, mis-encoded."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class UnsupportedFileError(ParseError):
    """A file whose type no parser handles."""


class IndexMissingError(RagError):
    """No index at the given location."""

    status_code = 404


class IndexIncompatibleError(RagError):
    """The index was built with another embedder or format version."""

    status_code = 409


class ModelUnavailableError(RagError):
    """A model (embedder or generator) cannot be found or loaded."""

    status_code = 503


class DocumentNotFoundError(RagError):
    """No document with the given id or source in the index."""

    status_code = 404


class IndexCorruptError(RagError):
    """An index file that cannot be read or disagrees with the others; the message names the file and
    says how to recover (`rag check`, an intact earlier generation, or a rebuild)."""

    status_code = 503
