"""How a prompt reference handed to any face is read: an all-ASCII-digit string is an id.

Kept apart from store/prompts.py so that faces can use it without loading SQLite."""


def prompt_ref(prompt: int | str) -> int | str:
    if isinstance(prompt, str) and prompt.isascii() and prompt.isdigit():
        return int(prompt)
    return prompt
