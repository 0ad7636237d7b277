"""How a prompt reference handed to any face is read: an all-ASCII-digit string is an id.

Kept apart from store/prompts.py so that faces can use it without loading SQLite."""

SQLITE_MAX_INT = 2**63 - 1  # a bigger Python int cannot even be a query parameter


def sql_int(value: int) -> int:
    """An int as SQLite takes it: a limit past 2**63-1 means everything, and a version or id
    that large exists nowhere, so clamping changes no answer (and is no OverflowError)."""
    return max(-SQLITE_MAX_INT, min(int(value), SQLITE_MAX_INT))


def checked_int(value: int, what: str) -> int:
    """`value` if SQLite can take it as a parameter; otherwise InvalidInput naming `what`."""
    from .errors import InvalidInput

    if not 0 <= value <= SQLITE_MAX_INT:  # a bigger int cannot even be a query parameter
        raise InvalidInput(f"{what} is a whole number from 0 to 2**63-1; got {value}")
    return value


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
