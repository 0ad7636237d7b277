"""Property tests (hypothesis) over what people type: template text saved and then rendered,
variable values, and CSV bytes given to the suite importer. Every input either works or is a
PromStackError with a sentence; the store stays consistent (integrity_check, gap-free
numbers, a verifying audit chain). Template text on save alone and prompt names:
tests/test_bad_input.py; MCP arguments: test_mcp_fuzz.py."""

from __future__ import annotations

import csv
import io

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from promstack import Client, PromStackError
from promstack.evals import engine

from .helpers import integrity_ok, version_invariants

EXAMPLES = 80
SETTINGS = settings(max_examples=EXAMPLES, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

_jinja = st.sampled_from([
    "{{ a }}", "{{ b }}", "{{ a.b }}", "{{ a | upper }}", "{{ a ~ b }}", "{% for x in a %}{{ x }}{% endfor %}",
    "{% if a %}", "{% endif %}", "{{", "}}", "{%", "%}", "{#", "#}", "{{ a|length }}", "{{ a[0] }}",
    "{{ a.__class__ }}", "{{ range(10**9)|list }}", "{{ 'x' * 10**8 }}", "{{ cycler }}", "{{ lipsum() }}",
    "{% raw %}", "{% endraw %}", "{{ a|join(',') }}", "{{ a|int }}", "{{ b|float }}", "{% set c = a %}{{ c }}",
    "text ", "\n", "한국어 ", "\x00", "\ud800", "{{ a }}{{ a }}", "{{ a|default('d') }}",
])
_template = st.one_of(st.lists(_jinja, min_size=1, max_size=12).map("".join), st.text(max_size=120))
_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
_values = st.dictionaries(st.sampled_from(["a", "b", "c", "__class__", "self", ""]), _json, max_size=3)


def _sentence(exc: PromStackError) -> None:
    text = str(exc)
    assert text.strip() and "Traceback" not in text and len(text) < 2000, text


@SETTINGS
@given(templates=st.lists(_template, min_size=1, max_size=4), values=st.lists(_values, min_size=1, max_size=3))
def test_any_template_rendered_with_any_values_works_or_says_why(isolated_store, templates, values):
    with Client(isolated_store) as client:
        for template in templates:
            try:
                saved = client.save("p", template) if client.list_prompts() else client.create_prompt("p", template)
            except PromStackError as exc:
                _sentence(exc)
                continue
            for variables in values:
                try:
                    out = saved.render(**variables)
                except PromStackError as exc:
                    _sentence(exc)
                    continue
                assert isinstance(out, str)
                assert len(out) < 2_000_000  # sandbox limits held: no runaway output
        integrity_ok(isolated_store)
        version_invariants(isolated_store)
        assert client.verify_audit()[0]


@SETTINGS
@given(value=_json)
def test_a_value_is_inserted_never_evaluated(client, value):
    """A value that looks like a template ("{{ 7*7 }}") is text: rendering is not recursive."""
    client.create_prompt("v", "<{{ a }}>") if not client.list_prompts() else None
    payload = value if not isinstance(value, str) else value + "{{ 7*7 }}{% raw %}"
    try:
        out = client.get_prompt("v").render(a=payload)
    except PromStackError as exc:
        _sentence(exc)
        return
    if isinstance(payload, str):
        assert out == f"<{payload}>"
    assert "49" not in out or "49" in str(payload)


_cell = st.one_of(st.text(max_size=20), st.sampled_from(["", '"', '""', ",", "\n", "\r\n", "contains:", "regex:(",
                                                         "json:", "{", "=cmd|' /C calc'!A0", "\ufeff", "\x00"]))
_rows = st.lists(st.lists(_cell, min_size=0, max_size=4), max_size=8)
_header = st.lists(st.sampled_from(["input", "expected_output", "question", "", "input", "assert", "tags", "x y"]),
                   min_size=0, max_size=4)


def _csv_bytes(header: list[str], rows: list[list[str]], encoding: str) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    if header:
        writer.writerow(header)
    writer.writerows(rows)
    return buffer.getvalue().encode(encoding, errors="replace" if encoding == "latin-1" else "surrogatepass")


_csv = st.one_of(
    st.builds(_csv_bytes, _header, _rows, st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1"])
              ).filter(lambda b: b is not None),
    st.binary(max_size=300),
    st.builds(lambda b, rest: b"input,expected_output\n" + b + rest, st.binary(max_size=60), st.binary(max_size=60)),
)


@SETTINGS
@given(data=_csv)
def test_any_csv_bytes_import_or_say_why(client, isolated_store, tmp_path, data):
    path = tmp_path / "fuzz.csv"
    try:
        path.write_bytes(data)
    except UnicodeEncodeError:
        return
    before = {s["name"]: s["case_count"] for s in engine.list_suites(client)}
    try:
        suite = engine.import_suite(client, path)
    except PromStackError as exc:
        _sentence(exc)
        assert {s["name"]: s["case_count"] for s in engine.list_suites(client)} == before  # nothing half-imported
    else:
        shown = engine.show_suite(client, suite["name"], limit=1000)
        # a file with no cases is refused, so an import holds at least one, and the list agrees
        assert suite["case_count"] == len(shown["cases"]) and suite["case_count"] >= 1
        assert {s["name"]: s["case_count"] for s in engine.list_suites(client)}[suite["name"]] == suite["case_count"]
    integrity_ok(isolated_store)


@SETTINGS
@given(text=st.text(max_size=300), fmt=st.sampled_from(["csv", "json", "jsonl"]))
def test_any_pasted_cases_import_or_say_why(client, text, fmt):
    """The same through text (the MCP tool's and the dashboard's way in)."""
    try:
        engine.import_suite(client, text=text, fmt=fmt, name="pasted")
    except PromStackError as exc:
        _sentence(exc)


def test_a_variable_named_self_is_a_variable(client):
    """Found by the property above: render(**values) took `self` as its own argument."""
    version = client.create_prompt("s", "{{ self_ }} and {{ other }}")
    assert version.render(self=1, self_="a", other="b") == "a and b"
