"""The domain errors every face translates: each message says what went wrong and what to do."""


class PromStackError(Exception):
    """Base of every error PromStack raises on purpose."""


class NotFound(PromStackError):
    """A prompt, version, branch, label or run that does not exist."""


class InvalidInput(PromStackError):
    """An argument that cannot be accepted as given."""


class MergeConflict(PromStackError):
    """Both sides of a merge changed the same lines; nothing was written."""

    def __init__(self, message: str, conflicts: list[dict] | None = None):
        super().__init__(message)
        self.conflicts = conflicts or []


class Busy(PromStackError):
    """The store stayed locked by another writer for longer than the retry budget."""
