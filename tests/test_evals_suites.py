"""Suites: the seed's CSV verbatim, Korean, BOM, multi-line cells, variables, JSON/JSONL, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from test_evals_fake import SEED_CSV

from promstack import InvalidInput, NotFound
from promstack.cli import cli
from promstack.evals import engine
from promstack.evals.assertions import case_assertions

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
pytest_plugins = ("test_evals_fake",)


def _write(tmp_path: Path, name: str, data: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(data, bytes):
        path.write_bytes(data)
    else:
        path.write_text(data, encoding="utf-8")
    return path


def test_seed_csv_verbatim(client, tmp_path):
    suite = engine.import_suite(client, _write(tmp_path, "regression.csv", SEED_CSV))
    assert suite["name"] == "regression" and suite["case_count"] == 3
    cases = client.evals.cases(suite["id"])
    assert [(c["input"], c["expected"]) for c in cases] == [
        ("이 제품의 장점은?", "긍정적 답변"), ("환불하고 싶어요", "환불 절차 안내"), ("욕설 포함 입력", "정중한 거절"),
    ]
    assert [c["line"] for c in cases] == [2, 3, 4]
    # A description of a good answer, not literal text: the judge checks it.
    assert case_assertions(cases[1]) == [{"type": "expected", "value": "환불 절차 안내"}]


def test_examples_suite_with_its_sidecar(client):
    client.create_prompt("support/answer", "{{ input }}", id=42)
    suite = engine.import_suite(client, EXAMPLES / "tests" / "prompts" / "regression.csv")
    assert suite["case_count"] == 3 and suite["prompt_id"] == 42
    assert suite["config"]["judge"]["criteria"][0] == "응답이 질문에 적절한가?"


def test_bom_multiline_and_extra_columns_are_variables(client, tmp_path):
    text = '\ufeffinput,expected_output,tone,assert:contains\n"첫 줄\n둘째 줄, 쉼표","contains:환불",formal,절차\n'
    suite = engine.import_suite(client, _write(tmp_path, "multi.csv", text))
    (case,) = client.evals.cases(suite["id"])
    assert case["input"] == "첫 줄\n둘째 줄, 쉼표"
    assert case["variables"] == {"tone": "formal"}
    assert case["assertions"] == [{"type": "contains", "value": "절차"}]
    assert case_assertions(case) == [{"type": "contains", "value": "환불"}, {"type": "contains", "value": "절차"}]


def test_expected_prefixes_make_deterministic_checks():
    assert case_assertions({"expected": "equals: 42"}) == [{"type": "equals", "value": "42"}]
    assert case_assertions({"expected": "regex:^환불"}) == [{"type": "regex", "value": "^환불"}]
    assert case_assertions({"expected": "  "}) == []
    assert case_assertions({"expected": "time: soon"}) == [{"type": "expected", "value": "time: soon"}]


@pytest.mark.parametrize(("data", "message"), [
    ('input,expected_output\n"a","b"\n"c","d","e"\n', "line 3: 3 fields where the header has 2"),
    ('question,expected_output\n"a","b"\n', "line 1: there is no 'input' column"),
    (b'input,expected_output\n"a","b"\n"\xff\xfe","x"\n', "line 3: not UTF-8"),
    ('input,expected_output\n"a","b"\n"c","d\n', "line 3: a quoted cell is not closed"),
    ('input,expected_output\n"a"x,"b"\n', "line 2: a quoted cell has text after its closing quote"),
    ("input,expected_output\n", "has no cases: below the header (input,expected_output) add one line per case"),
    ("input,expected_output\n\n\n", "has no cases"),
    ("", "line 1: the file is empty"),
    ('input,assertions\n"a","[{""type"": ""nope""}]"\n', "line 2: unknown assertion type 'nope'"),
    ('input,assert:regex\n"a","(unclosed"\n', "line 2: the regex"),
])
def test_bad_csv_names_the_line(client, tmp_path, data, message):
    engine.import_suite(client, _write(tmp_path, "good.csv", SEED_CSV), name="keep")
    with pytest.raises(InvalidInput) as err:
        engine.import_suite(client, _write(tmp_path, "keep.csv", data))
    assert message in str(err.value)
    # the suite that was there is untouched
    assert client.evals.suite("keep")["case_count"] == 3


@pytest.mark.parametrize(("name", "data"), [("empty.jsonl", "\n"), ("empty.json", "[]"),
                                           ("empty.json", '{"cases": []}')])
def test_a_suite_without_cases_is_refused_in_every_format(client, tmp_path, name, data):
    with pytest.raises(InvalidInput, match="has no cases"):
        engine.import_suite(client, _write(tmp_path, name, data))


def test_the_cli_and_a_text_import_say_what_to_fix_in_a_csv(client, tmp_path):
    unclosed = _write(tmp_path, "broken.csv", 'input,expected_output\n"abc,def\n')
    result = CliRunner().invoke(cli, ["suite", "import", str(unclosed)])
    assert result.exit_code == 2
    assert "broken.csv line 2: a quoted cell is not closed" in result.stderr
    assert "unexpected end of data" not in result.stderr
    header_only = _write(tmp_path, "nothing.csv", "input,expected_output\n")
    result = CliRunner().invoke(cli, ["suite", "import", str(header_only)])
    assert result.exit_code == 2 and "nothing.csv has no cases" in result.stderr
    with pytest.raises(InvalidInput, match="has no cases"):
        engine.import_suite(client, name="typed", text="input,expected_output\n", fmt="csv")
    assert [s["name"] for s in engine.list_suites(client)] == []


def test_ragged_row_in_the_middle_leaves_the_old_suite(client, tmp_path):
    engine.import_suite(client, _write(tmp_path, "s.csv", SEED_CSV))
    rows = "input,expected_output\n" + "".join(f'"q{i}","a{i}"\n' for i in range(5000)) + '"x"\n'
    with pytest.raises(InvalidInput, match="line 5002"):
        engine.import_suite(client, _write(tmp_path, "s.csv", rows))
    assert client.evals.suite("s")["case_count"] == 3


def test_json_and_jsonl(client, tmp_path):
    doc = {"prompt": 42, "judge": {"criteria": ["정확한가?"], "scoring": "1-5"}, "cases": [
        {"input": "환불하고 싶어요", "expected_output": "환불 절차 안내", "vars": {"name": "민수"}},
        {"input": "JSON please", "assert": [{"type": "is-json"}, "max-length:100"], "lang": "en"},
    ]}
    client.create_prompt("p", "{{ input }}", id=42)
    suite = engine.import_suite(client, _write(tmp_path, "j.json", json.dumps(doc, ensure_ascii=False)))
    assert suite["prompt_id"] == 42 and suite["config"]["judge"]["criteria"] == ["정확한가?"]
    cases = client.evals.cases(suite["id"])
    assert cases[0]["variables"] == {"name": "민수"}
    assert cases[1]["variables"] == {"lang": "en"}
    assert cases[1]["assertions"] == [{"type": "is-json"}, {"type": "max-length", "value": 100}]
    lines = '{"input": "a", "expected": "b"}\n\n{"input": "c"}\n'
    suite = engine.import_suite(client, _write(tmp_path, "l.jsonl", lines))
    assert suite["case_count"] == 2
    with pytest.raises(InvalidInput, match="line 2: not valid JSON"):
        engine.import_suite(client, _write(tmp_path, "bad.jsonl", '{"input": "a"}\n{"input": \n'))
    with pytest.raises(InvalidInput, match="case 1: the case has no 'input'"):
        engine.import_suite(client, _write(tmp_path, "noin.json", '[{"expected_output": "x"}]'))


def test_workspace_files_are_synced_and_tied_by_sidecar(client, tmp_path):
    client.create_prompt("support/answer", "{{ input }}", id=42)
    folder = tmp_path / "tests" / "prompts"
    folder.mkdir(parents=True)
    (folder / "regression.csv").write_text(SEED_CSV, encoding="utf-8")
    (folder / "regression.yml").write_text("prompt: 42\nthreshold: 80\n", encoding="utf-8")
    suite = engine.get_suite(client, "regression")
    assert suite["prompt_id"] == 42 and suite["case_count"] == 3 and suite["config"]["threshold"] == 80
    assert suite["source"] == "file:tests/prompts/regression.csv"
    assert engine.sync_workspace(client) == []  # unchanged bytes: nothing re-imported
    (folder / "regression.csv").write_text(SEED_CSV + '"새 질문","새 답변"\n', encoding="utf-8")
    assert engine.get_suite(client, "regression")["case_count"] == 4
    assert engine.suite_for_prompt(client, 42)["name"] == "regression"


def test_unknown_suite_is_a_clear_error(client):
    with pytest.raises(NotFound, match="there is no test suite 'nope'.*tests/prompts/nope.csv"):
        engine.get_suite(client, "nope")


def test_suite_cli_import_list_show(client, tmp_path):
    runner = CliRunner()
    path = _write(tmp_path, "regression.csv", SEED_CSV)
    client.create_prompt("support/answer", "{{ input }}", id=42)
    out = runner.invoke(cli, ["suite", "import", str(path), "--prompt", "42"], catch_exceptions=False)
    assert out.exit_code == 0 and "3 cases, tied to prompt 42" in out.stdout
    listed = json.loads(runner.invoke(cli, ["suite", "list", "--json"]).stdout)
    assert [s["name"] for s in listed] == ["regression"]
    shown = runner.invoke(cli, ["suite", "show", "regression"])
    assert "환불하고 싶어요" in shown.stdout
    bad = runner.invoke(cli, ["suite", "import", str(_write(tmp_path, "x.csv", "a,b\n1,2\n"))])
    assert bad.exit_code == 2 and "line 1: there is no 'input' column" in bad.stderr
    piped = runner.invoke(cli, ["suite", "import", "-", "--name", "piped", "--format", "csv"], input=SEED_CSV)
    assert piped.exit_code == 0, piped.stderr


PROMPT_YML = """name: Refund answer
model: openai/good
messages:
  - role: user
    content: "질문: {{input}}"
testData:
  - input: 환불하고 싶어요
    expected: GOOD answer
  - input: 교환 되나요?
    expected: GOOD answer
evaluators:
  - name: starts well
    string:
      startsWith: '{{expected}}'
  - name: similar to the reference
    uses: github/similarity
"""


def test_a_prompt_yml_carries_its_own_suite(client, tmp_path, scripted):
    from store.filesync import FileSync

    folder = tmp_path / "prompts" / "support"
    folder.mkdir(parents=True)
    (folder / "refund.prompt.yml").write_text(PROMPT_YML, encoding="utf-8")
    FileSync(client.store, tmp_path / "prompts", root=tmp_path).reconcile()
    prompt = client.get_prompt("support/refund")
    suite = engine.suite_for_prompt(client, prompt.prompt_id)
    assert suite["name"] == "support/refund" and suite["case_count"] == 2 and suite["prompt_id"] == prompt.prompt_id
    (case, _) = client.evals.cases(suite["id"])
    assert case["input"] == "환불하고 싶어요" and case["expected"] is None
    assert case["assertions"] == [{"type": "regex", "value": "(?i)\\AGOOD\\ answer"},
                                  {"type": "similar", "value": "GOOD answer"}]
    result = CliRunner().invoke(cli, ["test", "--prompt", "support/refund", "--json"], catch_exceptions=False)
    run = json.loads(result.stdout)
    assert result.exit_code == 1 and run["suite_name"] == "support/refund"
    assert run["summary"]["results"] == 2  # the regex passes; "GOOD answer: 질문: ..." is not similar enough
    assert engine.suite_for_prompt(client, prompt.prompt_id)["id"] == suite["id"]  # unchanged: not re-imported
