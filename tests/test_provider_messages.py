"""A provider's message in an error is shortened between words, never cut inside one (a cut
"ANTHR" reads like a real variable name), and keys in it stay redacted."""

from __future__ import annotations

import json

from promstack.gateway.errors import DETAIL_LIMIT, redact, shorten
from promstack.gateway.litellm_loader import litellm_error, load_litellm
from promstack.gateway.routing import Route
from promstack.gateway.transport import provider_message

LONG = ("litellm.AuthenticationError: AnthropicException - Missing Anthropic API Key - A call is being "
        "made to anthropic but no key is set either in the environment variables or via params. "
        "Please set ANTHROPIC_API_KEY or ANTHROPIC_API_KEY_BACKUP in your environment vars. ") * 3


def _whole_words(shortened: str, original: str) -> None:
    kept = shortened.removesuffix("…").rstrip()
    assert original.startswith(kept) or " ".join(original.split()).startswith(kept)
    words = set(" ".join(original.split()).split(" "))
    assert kept.split(" ")[-1] in words, kept[-40:]


def test_a_long_litellm_message_ends_on_a_whole_word():
    litellm = load_litellm()
    exc = litellm.AuthenticationError(message=LONG, llm_provider="anthropic", model="claude-3-5-haiku-latest")
    route = Route("litellm", "anthropic", "anthropic/claude-3-5-haiku-latest", "claude-3-5-haiku-latest",
                  None, "ANTHROPIC_API_KEY")
    text = str(litellm_error(route, exc))
    assert "ANTHROPIC_API_KEY" in text
    assert "ANTHR " not in text + " " and not text.rstrip(" .;").endswith("ANTHR")
    assert "…" in text


def test_a_provider_body_is_shortened_between_words():
    body = json.dumps({"error": {"message": LONG}}).encode()
    shown = provider_message(body)
    assert len(shown) <= DETAIL_LIMIT and shown.endswith("…")
    _whole_words(shown, LONG)
    raw = (b"<html><body>" + b"Service temporarily unavailable, please retry later " * 20 + b"</body></html>")
    shown = provider_message(raw)
    assert shown.endswith("…") and len(shown) <= DETAIL_LIMIT
    _whole_words(shown, raw.decode())


def test_a_short_message_is_kept_whole_and_keys_stay_redacted():
    assert shorten("Incorrect API key provided") == "Incorrect API key provided"
    key = "sk-" + "a1B2c3D4e5" * 4
    message = f"Incorrect API key provided: {key}. You can find your API key at https://example.com " * 8
    shown = redact(provider_message(json.dumps({"error": {"message": message}}).encode()))
    assert key[:8] not in shown and "***" in shown
    assert shown.endswith("…")
