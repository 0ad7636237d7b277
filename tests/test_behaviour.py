"""The behaviour diff: both versions run on the suite, each case's two outputs judged blind in both
orders, a summary, the cases that changed most first; suites that don't fit; the CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from promstack import InvalidInput, NotFound
from promstack.cli import cli
from promstack.evals.behaviour import behaviour_diff

pytest_plugins = ("test_evals_fake",)

MODEL = "openai/echo"  # echoes the rendered prompt, so what a version says decides its QUALITY
V1 = ("{% if 'refund' in input %}QUALITY=3{% elif 'hello' in input %}QUALITY=2"
      "{% elif 'weather' in input %}QUALITY=2 talk{% else %}QUALITY=3{% endif %} Q: {{ input }}")
V2 = ("{% if 'refund' in input %}QUALITY=1{% elif 'hello' in input %}QUALITY=4"
      "{% elif 'weather' in input %}QUALITY=2 chat{% else %}QUALITY=3{% endif %} Q: {{ input }}")
CASES = [{"input": text, "assert": [{"type": "contains", "value": "QUALITY"}]}
         for text in ("refund me", "hello", "parcel late", "weather today", "hello again")]


@pytest.fixture
def two_versions(client, scripted, tmp_path):
    client.create_prompt("support/bot", V1, model_config={"model": MODEL})
    client.save("support/bot", V2, model_config={"model": MODEL}, message="reword")
    folder = tmp_path / "tests" / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "support.json").write_text(json.dumps(CASES), encoding="utf-8")
    (folder / "support.yml").write_text("prompt: support/bot\njudge_model: openai/judge\n", encoding="utf-8")
    return scripted


def pair_requests(scripted) -> list[str]:
    return [r["json"]["messages"][-1]["content"] for r in scripted.requests
            if "compare two AI answers" in r["json"]["messages"][0]["content"]]


def test_case_by_case_with_both_orders_and_a_summary(client, two_versions):
    found = behaviour_diff(client, "support/bot", 1, 2)
    assert (found["from_version"], found["to_version"], found["suite"]) == (1, 2, "support")
    assert (found["a_better"], found["b_better"], found["same"]) == (1, 2, 2)
    assert found["verdict"] == "B better"
    assert found["text"] == ("B (v2) is better on suite 'support': v2 better in 2, v1 better in 1, "
                             "the same in 2 of 5 case(s)")
    by_input = {c["input"]: c for c in found["cases"]}
    refund = by_input["refund me"]
    assert refund["winner"] == "a" and refund["verdict_ab"] == refund["verdict_ba"] == "a"
    assert "QUALITY=3" in refund["output_a"] and "QUALITY=1" in refund["output_b"]
    assert refund["reason"] == "Quality 3 vs 1."
    assert by_input["hello"]["winner"] == "b" and by_input["hello"]["margin"] == 1.0
    assert by_input["weather today"]["winner"] == "tie" and by_input["weather today"]["reason"] == "Quality 2 vs 2."
    same = by_input["parcel late"]
    assert same["winner"] == "tie" and same["output_a"] == same["output_b"] and same["margin"] == 0.0
    # changed most first: the three decided cases, then the tie whose text changed, then the identical one
    order = [c["input"] for c in found["cases"]]
    assert set(order[:3]) == {"refund me", "hello", "hello again"}
    assert order[3:] == ["weather today", "parcel late"]
    # both orders: two blind comparisons per case whose outputs differ, the second one swapped
    asked = pair_requests(two_versions)
    assert len(asked) == 8
    for text in asked:
        a = text.split("[Answer A]\n", 1)[1].split("[Answer B]", 1)[0].strip()
        b = text.split("[Answer B]\n", 1)[1].strip()
        assert any(a in other.split("[Answer B]\n", 1)[1] and b in other.split("[Answer B]", 1)[0] for other in asked)


def test_a_judge_that_follows_the_position_is_a_tie(client, two_versions):
    found = behaviour_diff(client, "support/bot", 1, 2, judge_model="openai/judge-biased")
    weather = next(c for c in found["cases"] if c["input"] == "weather today")
    assert weather["winner"] == "tie" and weather["verdict_ab"] != weather["verdict_ba"]
    assert weather["reason"].startswith("the orders disagreed")
    assert weather["margin"] == 0.0


def test_runs_are_reused_and_calls_cached(client, two_versions):
    first = behaviour_diff(client, "support/bot", 1, 2)
    assert first["model_calls"] == sum(two_versions.counts.values()) > 0
    before = sum(two_versions.counts.values())
    again = behaviour_diff(client, "support/bot", 1)  # B: main's head, v2
    assert again["model_calls"] == 0 and sum(two_versions.counts.values()) == before
    assert again["cases"] == first["cases"]


def test_no_suite_and_a_suite_that_does_not_fit(client, scripted, tmp_path):
    client.create_prompt("lonely", "Hi {{ input }}", model_config={"model": MODEL})
    client.save("lonely", "Hello {{ input }}", model_config={"model": MODEL})
    with pytest.raises(NotFound, match="no test suite is tied to prompt"):
        behaviour_diff(client, "lonely", 1, 2)
    client.create_prompt("asker", "Hi {{ input }}", model_config={"model": MODEL})
    client.save("asker", "Hi {{ question }}", model_config={"model": MODEL})
    folder = tmp_path / "tests" / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "ask.csv").write_text("input,expected_output\nhi,hello\n", encoding="utf-8")
    (folder / "ask.yml").write_text("prompt: asker\n", encoding="utf-8")
    with pytest.raises(InvalidInput) as caught:
        behaviour_diff(client, "asker", 1, 2)
    assert "needs {{ question }}" in str(caught.value) and "columns input, expected_output" in str(caught.value)
    assert sum(scripted.counts.values()) == 0  # nothing billed


def test_cli(client, two_versions):
    runner = CliRunner()
    out = runner.invoke(cli, ["diff", "support/bot", "1", "2", "--behaviour"])
    assert out.exit_code == 0, out.output
    lines = out.output.splitlines()
    assert lines[0].startswith("B (v2) is better on suite 'support'")
    assert any(line.startswith("case 0 [A v1 better, changed 1.00; A first: a, B first: a] 'refund me'")
               for line in lines)
    assert any(" | " in line and "QUALITY=3" in line and "QUALITY=1" in line for line in lines)
    assert "judge: Quality 3 vs 1." in out.output and "why: both versions gave the same output" in out.output
    data = json.loads(runner.invoke(cli, ["diff", "support/bot", "1", "2", "--behaviour", "--json"]).output)
    assert data["verdict"] == "B better" and len(data["cases"]) == 5
    plain = runner.invoke(cli, ["diff", "support/bot", "1", "2"])
    assert plain.exit_code == 0 and "QUALITY=1" in plain.output  # the text diff is unchanged
    alone = runner.invoke(cli, ["diff", "support/bot", "1", "2", "--suite", "support"])
    assert alone.exit_code == 2 and "--suite and --judge-model go with --behaviour" in alone.output
