"""How a prompt reference handed to any face is read: an all-ASCII-digit string is an id.

Kept apart from store/prompts.py so that faces can use it without loading SQLite."""

SQLITE_MAX_INT = 2**63 - 1  # a bigger Python int cannot even be a query parameter


def sql_int(value: int) -> int:
    """An int as SQLite takes it: a limit past 2**63-1 means everything, and a version or id
    that large exists nowhere, so clamping changes no answer (and is no OverflowError)."""
    return max(-SQLITE_MAX_INT, min(int(value), SQLITE_MAX_INT))


def prompt_ref(prompt: int | str) -> int | str:
    if isinstance(prompt, str) and prompt.isascii() and prompt.isdigit():
        return int(prompt)
    return prompt


# PromStack keeps its own prompts (the judge's) under this prefix: they are versioned like any
# prompt, so a team can tune them, but they are not the user's prompts and their calls are
# evaluation spend, not the prompts' own.
INTERNAL_PREFIX = "promstack/"


def is_internal(name: str | None) -> bool:
    return bool(name) and name.startswith(INTERNAL_PREFIX)
