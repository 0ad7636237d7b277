"""Export and import of a whole store: ids, numbers, branches, labels and their history survive."""

from __future__ import annotations

import json

import pytest

from promstack import Client, InvalidInput


def _fill(client):
    client.create_prompt("shared/tone", "Be warm to {{ name }}.")
    client.create_prompt(
        "support/refund", "Refund {{ order }}", id=42,
        model_config={"model": "gpt-4o", "variables": {"order": {"type": "integer", "description": "order no"}}},
    )
    client.save(42, 'Refund {{ order }}. {% include "shared/tone" %}', message="tone")
    client.create_branch(42, "exp")
    client.save(42, "Refund order {{ order }} now.", branch="exp")
    client.save(42, model_config={"model": "gpt-4o-mini"})
    # production is a gated environment: with no suite to pass, these moves are forced (with a reason)
    client.set_label(42, "production", 2, reason="first release", force=True)
    client.set_label(42, "production", 4, reason="second release", force=True)
    client.create_prompt("chat", [{"role": "system", "content": "Hi {{ name }}"}])
    client.create_prompt("old", "gone soon")
    client.delete_prompt("old")


def _everything(client):
    """Every version as the SDK returns it, plus labels, label history, branches, dependencies."""
    out = {}
    for p in client.list_prompts(include_archived=True):
        out[p.name] = {
            "summary": p.to_dict(),
            "versions": [v.to_dict() for v in client.history(p.id)],
            "branches": [b.to_dict() for b in client.list_branches(p.id)],
            "labels": client.labels(p.id),
            "moves": [m.to_dict() for m in client.label_history(p.id)],
            "dependents": client.dependents(p.id),
        }
    return out


def test_roundtrip_preserves_everything(client, tmp_path):
    _fill(client)
    document = json.loads(json.dumps(client.export()))  # through real JSON text
    with Client(tmp_path / "fresh.db") as fresh:
        # the document points production at v4: taken only forced, with a reason
        counts = fresh.import_(document, force=True, reason="restore the backup")
        assert counts == {"prompts": 4, "versions": 7, "labels": 1}
        assert fresh.export() == document
        assert _everything(fresh) == _everything(client)
        seed = fresh.get_prompt(id=42, version=3)
        assert (seed.name, seed.template, seed.branch) == ("support/refund", "Refund order {{ order }} now.", "exp")
        assert fresh.get_prompt(id=42, version=2).render(order=7, name="Ana") == "Refund 7. Be warm to Ana."
        assert fresh.get_prompt(42, label="production").version == 4
        # the imported store keeps working: numbers continue, branches still merge
        assert fresh.save(42, model_config={"model": "gpt-4o", "temperature": 0}).version == 5
        merged = fresh.merge(42, "exp")
        assert (merged.version, merged.template) == (6, "Refund order {{ order }} now.")
        assert [a["action"] for a in fresh.audit_log()][-2:] == ["deploy_forced", "import"]
        assert fresh.verify_audit()[0]


def test_import_clash_leaves_the_store_unchanged(client, tmp_path):
    _fill(client)
    document = client.export()
    with Client(tmp_path / "other.db") as other:
        other.create_prompt("mine", "my own", id=100)
        other.create_prompt("chat", "taken name", id=101)  # a name the document uses too
        before = (other.export(), len(other.audit_log(limit=1000)))
        with pytest.raises(InvalidInput, match="'chat' \\(id 43\\) clashes with prompt 'chat' \\(id 101\\).*nothing was imported"):
            other.import_(document, force=True, reason="restore")
        assert (other.export(), len(other.audit_log(limit=1000))) == before


def test_import_id_clash(client, tmp_path):
    client.create_prompt("a", "x", id=42)
    with Client(tmp_path / "other.db") as other:
        other.create_prompt("b", "y", id=42)
        with pytest.raises(InvalidInput, match="id 42"):
            other.import_(client.export())
        assert [p.name for p in other.list_prompts()] == ["b"]


@pytest.mark.parametrize(
    "document",
    [
        {"prompts": []},
        {"format": "promstack/0", "prompts": []},
        {"format": "promstack/1", "prompts": {}},
        {"format": "promstack/1", "prompts": [{"name": "x"}]},
        "not even an object",
    ],
)
def test_import_of_something_else_is_refused(client, document):
    before = client.export()
    with pytest.raises(InvalidInput):
        client.import_(document)
    assert client.export() == before


def test_import_of_a_bad_template_writes_nothing(client, tmp_path):
    _fill(client)
    document = client.export()
    document["prompts"][1]["versions"][2]["template"] = "broken {{ "
    with Client(tmp_path / "fresh.db") as fresh:
        with pytest.raises(InvalidInput, match="does not parse"):
            fresh.import_(document)
        assert fresh.export() == {"format": "promstack/1", "prompts": []}
        assert fresh.audit_log() == []


def test_an_export_without_variables_still_imports(client, tmp_path):
    client.create_prompt("p", "Hi {{ name }}", model_config={"variables": {"name": {"default": "you"}}})
    document = client.export()
    del document["prompts"][0]["versions"][0]["variables"]
    with Client(tmp_path / "fresh.db") as fresh:
        fresh.import_(document)
        assert fresh.get_prompt("p").variables == client.get_prompt("p").variables


def _set(path, value):
    def change(document):
        *where, last = path
        item = document["prompts"][0]
        for key in where:
            item = item[key]
        if value is _DELETE:
            del item[last]
        else:
            item[last] = value
    return change


_DELETE = object()


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_set(["versions", 1, "version"], 1), "numbered"),
        (_set(["versions", 1, "version"], "two"), "numbered"),
        (_set(["versions"], []), "non-empty list"),
        (_set(["versions"], 5), "non-empty list"),
        (_set(["versions", 0, "template"], _DELETE), "'template'"),
        (_set(["versions", 1, "parent"], 9), "parent of version 2"),
        (_set(["versions", 1, "model_config"], {"temperature": 9}), "temperature"),
        (_set(["branches", 0, "head"], _DELETE), "'head'"),
        (_set(["branches", 0, "head"], 99), "branch 'exp' points at version 99"),
        (_set(["branches", 0, "head"], [1]), "points at version [1]"),
        (_set(["branches", 1, "name"], "exp"), "twice"),
        (_set(["branches"], _DELETE), "'branches'"),
        (_set(["branches", 1, "name"], "trunk"), "no branch 'main'"),
        (_set(["labels", 0, "version"], 99), "label 'production' points at version 99"),
        (_set(["labels", 0, "version"], _DELETE), "'version'"),
        (_set(["labels", 0, "name"], "live now"), "label name"),
        (_set(["label_history", 0, "actor"], _DELETE), "'actor'"),
        (_set(["label_history", 0, "to_version"], 7), "move of label 'production'"),
        (_set(["id"], "abc"), "id 'abc'"),
        (_set(["id"], 0), "id 0"),
        (lambda d: d["prompts"].append("x"), "must be an object"),
    ],
)
def test_import_of_a_damaged_export_names_the_place_and_writes_nothing(client, tmp_path, change, words):
    client.create_prompt("p", "one")
    client.save("p", "two")
    client.create_branch("p", "exp")
    client.set_label("p", "production", 1, force=True, reason="first release")
    document = json.loads(json.dumps(client.export()))
    assert [b["name"] for b in document["prompts"][0]["branches"]] == ["exp", "main"]
    change(document)
    with Client(tmp_path / "fresh.db") as fresh:
        fresh.create_prompt("mine", "kept", id=900)
        before = (fresh.export(), len(fresh.audit_log()))
        with pytest.raises(InvalidInput) as caught:
            fresh.import_(document)
        assert words in str(caught.value)
        assert (fresh.export(), len(fresh.audit_log())) == before
