"""Bad input gets an error that names the thing, and leaves the store exactly as it was."""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promstack import Client, InvalidInput, NotFound, PromStackError
from store.template import MAX_TEMPLATE_BYTES


def dump(client: Client) -> str:
    """Every row of every table, audit and migrations included."""
    return "\n".join(client.store.db.conn.iterdump())


@pytest.fixture
def seeded(client):
    client.create_prompt("support/refund", "Refund {{ order }}\nThanks.\n", model_config={"model": "m"})
    client.save("support/refund", "Refund {{ order }} now\nThanks.\n")
    client.create_branch("support/refund", "exp")
    client.set_label("support/refund", "production", 1, force=True, reason="first release")  # no suite to pass
    return client


def refused(client, call, error, *words):
    """`call` raises `error` whose message contains every one of `words`; nothing changed."""
    before = dump(client)
    with pytest.raises(error) as caught:
        call()
    for word in words:
        assert word in str(caught.value), (word, str(caught.value))
    assert dump(client) == before
    return str(caught.value)


# ---- unknown things ------------------------------------------------------------------------


def test_unknown_prompt(seeded):
    refused(seeded, lambda: seeded.get_prompt("support/refnd"), NotFound, "'support/refnd'", "did you mean 'support/refund'")
    refused(seeded, lambda: seeded.get_prompt(id=999), NotFound, "999")
    refused(seeded, lambda: seeded.save("nope", "x"), NotFound, "'nope'")
    refused(seeded, lambda: seeded.set_label("nope", "production", 1), NotFound, "'nope'")
    refused(seeded, lambda: seeded.delete_prompt("nope"), NotFound, "'nope'")
    refused(seeded, lambda: seeded.history(12345), NotFound, "12345")


def test_unknown_version(seeded):
    for call in (
        lambda: seeded.get_prompt("support/refund", version=7),
        lambda: seeded.rollback("support/refund", 7),
        lambda: seeded.diff("support/refund", 7, 1),
        lambda: seeded.set_label("support/refund", "staging", 7),
        lambda: seeded.create_branch("support/refund", "b", from_version=7),
    ):
        refused(seeded, call, NotFound, "'support/refund' has no version 7; its newest is 2")


@pytest.mark.parametrize("version", [0, -1, 1.5, "two", True])
def test_a_version_that_is_not_a_number(seeded, version):
    refused(seeded, lambda: seeded.get_prompt("support/refund", version=version), InvalidInput,
            repr(version))


def test_numbers_too_big_for_sqlite(seeded):
    huge = 2**70
    refused(seeded, lambda: seeded.get_prompt(id=huge), NotFound, str(huge))
    refused(seeded, lambda: seeded.get_prompt("9" * 30), NotFound, "9" * 30)
    refused(seeded, lambda: seeded.get_prompt("support/refund", version=huge), NotFound,
            f"no version {huge}; its newest is 2")
    refused(seeded, lambda: seeded.set_label("support/refund", "production", huge), NotFound, str(huge))
    refused(seeded, lambda: seeded.rollback("support/refund", huge), NotFound, str(huge))
    refused(seeded, lambda: seeded.create_prompt("new", "x", id=huge), InvalidInput, str(huge))
    assert len(seeded.history("support/refund", limit=huge)) == 2


def test_unknown_branch_and_label(seeded):
    refused(seeded, lambda: seeded.save("support/refund", "x", branch="nope"), NotFound, "'nope'")
    refused(seeded, lambda: seeded.merge("support/refund", "nope"), NotFound, "'nope'")
    refused(seeded, lambda: seeded.get_prompt("support/refund", label="prod"), NotFound,
            "'prod'", "latest, production")


def test_version_and_label_together(seeded):
    refused(seeded, lambda: seeded.get_prompt("support/refund", version=1, label="production"),
            InvalidInput, "version and label")


def test_no_prompt_named(seeded):
    refused(seeded, lambda: seeded.get_prompt(), InvalidInput, "name")
    refused(seeded, lambda: seeded.get_prompt(None, id=None, version=1), InvalidInput, "name")


# ---- templates -----------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["", "   ", "\n\t\n"])
def test_empty_template(seeded, template):
    refused(seeded, lambda: seeded.create_prompt("new", template), InvalidInput, "empty")
    refused(seeded, lambda: seeded.save("support/refund", template), InvalidInput, "empty")


def test_non_utf8_bytes(seeded):
    message = refused(seeded, lambda: seeded.create_prompt("new", b"caf\xe9 {{ x }}"), InvalidInput, "UTF-8")
    assert "offset 3" in message
    refused(seeded, lambda: seeded.save("support/refund", b"\xff\xfe"), InvalidInput, "UTF-8")


def test_utf8_bytes_are_text(seeded):
    assert seeded.create_prompt("new", "환불 {{ x }}".encode()).template == "환불 {{ x }}"


def test_lone_surrogates(seeded):
    refused(seeded, lambda: seeded.create_prompt("new", "bad \ud800 text"), InvalidInput, "UTF-8")


@pytest.mark.parametrize("template", ["abc\x00def", b"\x00\x01\x02binary", b"PK\x03\x04\x00\x00"])
def test_binary_template(seeded, template):
    refused(seeded, lambda: seeded.create_prompt("new", template), InvalidInput, "binary")
    refused(seeded, lambda: seeded.save("support/refund", template), InvalidInput, "binary")


def test_template_over_1_mb(seeded):
    big = "x" * (MAX_TEMPLATE_BYTES + 1)
    refused(seeded, lambda: seeded.create_prompt("new", big), InvalidInput, "1,000,001 bytes", "1 MB")
    refused(seeded, lambda: seeded.save("support/refund", big), InvalidInput, "1 MB")
    multibyte = "가" * (MAX_TEMPLATE_BYTES // 3 + 1)  # under 1M characters, over 1 MB
    refused(seeded, lambda: seeded.save("support/refund", multibyte), InvalidInput, "1 MB")
    chat = [{"role": "user", "content": "y" * (MAX_TEMPLATE_BYTES // 2)}] * 3
    refused(seeded, lambda: seeded.save("support/refund", chat), InvalidInput, "1 MB")


def test_template_of_exactly_1_mb_saves(seeded):
    assert seeded.save("support/refund", "x" * MAX_TEMPLATE_BYTES).version == 3


@pytest.mark.parametrize("template", [42, None, {"role": "user"}, [["user", "hi"]], 3.5])
def test_template_of_the_wrong_type(seeded, template):
    call = lambda: seeded.create_prompt("new", template)  # noqa: E731
    refused(seeded, call, InvalidInput, "template" if not isinstance(template, list) else "message 1")


def test_bad_jinja(seeded):
    refused(seeded, lambda: seeded.save("support/refund", "{% if x %}no end"), InvalidInput, "does not parse")
    refused(seeded, lambda: seeded.save("support/refund", "{{ x.__class__ }}"), InvalidInput, "'__class__'")
    refused(seeded, lambda: seeded.save("support/refund", "{{ x | nosuchfilter }}"), InvalidInput, "nosuchfilter")


@pytest.mark.parametrize(
    "template",
    [
        "{{ " + "(" * 3000 + "x" + ")" * 3000 + " }}",
        "{% if x %}" * 500 + "y" + "{% endif %}" * 500,
        "{{ x" + ".a" * 20000 + " }}",
    ],
)
def test_templates_nested_too_deeply(seeded, template):
    refused(seeded, lambda: seeded.save("support/refund", template), InvalidInput, "nests too deeply")


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ("gpt-4o", "model_config must be an object"),
        ({"temperature": 5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"model": ""}, "model"),
        ({"model": "m", "x": object()}, "JSON values"),
        ({"top_p": float("nan")}, "JSON values"),
        ({"stop": [float("inf")]}, "JSON values"),
        ({"variables": {"x": {"type": "date"}}}, "'date'"),
    ],
)
def test_bad_model_config(seeded, config, words):
    refused(seeded, lambda: seeded.save("support/refund", model_config=config), InvalidInput, words)
    refused(seeded, lambda: seeded.create_prompt("new", "x", model_config=config), InvalidInput, words)


# ---- names ---------------------------------------------------------------------------------

VALID_NAMES = ["support/refund", "a", "v2", "고객지원/환불", "team_a/sub-folder/prompt.v1", "a..b", "1/2"]
INVALID_NAMES = [
    "support refund", " lead", "trail ", "tab\tname", "line\nbreak", "name\n", "42", "007", "..",
    "a/../b", "../a", "/support/refund", "support/refund/", "a//b", ".hidden", "-dash", "", "x" * 201,
    "a/b c", "emoji😀",
]


@pytest.mark.parametrize("name", VALID_NAMES)
def test_valid_prompt_names(client, name):
    v = client.create_prompt(name, "x")
    assert client.get_prompt(name).prompt_id == v.prompt_id
    assert client.get_prompt(name).name == name


@pytest.mark.parametrize("name", INVALID_NAMES)
def test_invalid_prompt_names(seeded, name):
    message = refused(seeded, lambda: seeded.create_prompt(name, "x"), InvalidInput, "name")
    assert "support/refund" in message  # shows what a valid name looks like


@pytest.mark.parametrize("name", [123, None, b"bytes", ["a"]])
def test_a_name_that_is_not_text(seeded, name):
    refused(seeded, lambda: seeded.create_prompt(name, "x"), InvalidInput, "name")


@pytest.mark.parametrize("name", ["my label", "prod\n", " prod", "", "a/ b", "x" * 101])
def test_label_name_with_spaces(seeded, name):
    refused(seeded, lambda: seeded.set_label("support/refund", name, 1), InvalidInput,
            repr(name), "label name")


@pytest.mark.parametrize("name", ["my branch", "exp\n", "", "tab\tb"])
def test_branch_name_with_spaces(seeded, name):
    refused(seeded, lambda: seeded.create_branch("support/refund", name), InvalidInput,
            repr(name), "branch name")


def test_existing_names(seeded):
    refused(seeded, lambda: seeded.create_prompt("support/refund", "x"), InvalidInput,
            "'support/refund' exists already")
    refused(seeded, lambda: seeded.create_branch("support/refund", "exp"), InvalidInput, "'exp'")


# ---- operations that make no sense ---------------------------------------------------------


def test_merging_a_branch_into_itself(seeded):
    refused(seeded, lambda: seeded.merge("support/refund", "exp", into="exp"), InvalidInput,
            "'exp' into itself")


def test_merging_with_nothing_to_merge(seeded):
    refused(seeded, lambda: seeded.merge("support/refund", "exp"), InvalidInput, "'exp'", "nothing to merge")


def test_rolling_back_to_the_current_head(seeded):
    refused(seeded, lambda: seeded.rollback("support/refund", 2), InvalidInput,
            "version 2", "already the head of 'main'", "nothing to roll back")


def test_rolling_back_to_a_version_equal_to_the_head(seeded):
    seeded.rollback("support/refund", 1)  # v3 == v1
    refused(seeded, lambda: seeded.rollback("support/refund", 1), InvalidInput,
            "same content as version 3")


def test_a_label_of_only_digits(seeded):
    refused(seeded, lambda: seeded.set_label("support/refund", "3", 1), InvalidInput, "'3'", "version 3")


def test_setting_latest(seeded):
    refused(seeded, lambda: seeded.set_label("support/refund", "latest", 1), InvalidInput, "'latest'")


def test_deleted_twice_and_restored_twice(seeded):
    seeded.delete_prompt("support/refund")
    refused(seeded, lambda: seeded.delete_prompt("support/refund"), NotFound, "'support/refund'", "deleted")
    seeded.restore_prompt("support/refund")
    refused(seeded, lambda: seeded.restore_prompt("support/refund"), InvalidInput, "not deleted")


def test_id_and_name_of_different_prompts(seeded):
    other = seeded.create_prompt("other", "x")
    refused(seeded, lambda: seeded.get_prompt("support/refund", id=other.prompt_id), InvalidInput,
            "different prompts")


# ---- properties ----------------------------------------------------------------------------

_jinja_bits = st.sampled_from([
    "{{", "}}", "{%", "%}", "{#", "#}", " x ", "if", "endif", "for", "in", "include", '"a"', "'",
    "|", "upper", ".", "__class__", "(", ")", "[", "]", "\n", "\x00", "é", "환", "\ud800", " ",
    "-", "role", ":", ",", '"', "raw", "endraw", "set", "=", "1",
])
_templates = st.one_of(
    st.text(max_size=200),
    st.lists(_jinja_bits, max_size=30).map("".join),
    st.binary(max_size=60),
)
_names = st.one_of(
    st.text(max_size=30),
    st.lists(st.sampled_from(["a", "b", "/", ".", "..", "-", "_", " ", "1", "²", "٣", "é", "\n"]),
             max_size=8).map("".join),
)


def _consistent(client: Client, saved_versions: int) -> None:
    db = client.store.db
    assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert client.verify_audit()[0]
    assert [v.version for v in client.history("p")] == list(range(saved_versions, 0, -1))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(templates=st.lists(_templates, min_size=1, max_size=5))
def test_any_template_saves_or_is_invalid_input(templates):
    with Client(":memory:") as client:
        client.create_prompt("p", "start")
        count = 1
        for template in templates:
            before = dump(client)
            try:
                saved = client.save("p", template)
            except InvalidInput:
                assert dump(client) == before
                continue
            if saved.created:
                count += 1
            stored = client.get_prompt("p", version=saved.version)
            if stored.kind == "text":
                text = template.decode() if isinstance(template, bytes) else template
                assert stored.template == text
            assert stored.sha256 == saved.sha256
        _consistent(client, count)


@settings(max_examples=150, deadline=None)
@given(names=st.lists(_names, min_size=1, max_size=5))
def test_any_name_saves_or_is_invalid_input(names):
    with Client(":memory:") as client:
        client.create_prompt("p", "start")
        made = {}
        for name in names:
            before = dump(client)
            try:
                v = client.create_prompt(name, "text")
            except InvalidInput:
                assert dump(client) == before
                continue
            made[name] = v.prompt_id
            # what the name rules promise
            assert not re.search(r"\s", name)
            assert not name.isdecimal() and not name.startswith("/") and ".." not in name.split("/")
            assert client.get_prompt(name).prompt_id == v.prompt_id
        for name, pid in made.items():
            assert client.get_prompt(name).prompt_id == pid
            try:
                client.history(name)
            except PromStackError as exc:  # pragma: no cover - shown if it happens
                raise AssertionError(f"{name!r} was accepted but cannot be read back: {exc}") from exc
        _consistent(client, 1)
