"""Bisect: the version that broke a case (or the suite's score), found in O(log n) tested versions,
reusing finished runs and the cache; --good/--bad; ranges where nothing broke; the faces."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from promstack import InvalidInput, NotFound
from promstack.cli import cli
from promstack.evals import engine
from promstack.evals.bisect import bisect, most_tests

pytest_plugins = ("test_evals_fake",)

MODEL = "openai/echo"  # the scripted fake echoes the rendered prompt: each version answers differently
CASES = [
    {"input": "I want a refund", "assert": [{"type": "contains", "value": "REFUND-POLICY"}]},
    {"input": "hello there", "assert": [{"type": "contains", "value": "hello"}]},
    {"input": "where is my parcel", "assert": [{"type": "contains", "value": "TRACKING"}]},
]


def template(version: int, broke_at: int, tracking_from: int = 1) -> str:
    """Version `version` of the prompt: the refund rule is lost at `broke_at`; the tracking rule
    is there from `tracking_from`."""
    parts = [f"Support answer, revision {version}."]
    if version < broke_at:
        parts.append("Follow the REFUND-POLICY.")
    if version >= tracking_from:
        parts.append("Give the TRACKING link.")
    return " ".join(parts) + "\nQuestion: {{ input }}\n"


def make_prompt(client, tmp_path, n: int, broke_at: int, *, tracking_from: int = 1, name: str = "support/bot"):
    client.create_prompt(name, template(1, broke_at, tracking_from), model_config={"model": MODEL})
    for v in range(2, n + 1):
        client.save(name, template(v, broke_at, tracking_from), model_config={"model": MODEL}, message=f"rev {v}")
    folder = tmp_path / "tests" / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "support.json").write_text(json.dumps(CASES), encoding="utf-8")
    (folder / "support.yml").write_text(f"prompt: {name}\n", encoding="utf-8")
    return client.get_prompt(name).prompt_id


def calls(scripted) -> int:
    return sum(scripted.counts.values())


def test_finds_the_culprit_over_16_versions_testing_few(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 16, broke_at=11)
    found = bisect(client, "support/bot", case="refund")
    assert found["found"] and found["culprit"] == 11 and found["parent"] == 10
    assert len(found["tested"]) <= most_tests(16) <= 5  # ceil(log2 16) + 1
    assert found["model_calls"] == calls(scripted) == len(found["tested"])  # one case, no judge: a call each
    assert "-Support answer, revision 10. Follow the REFUND-POLICY. Give the TRACKING link." in found["diff"]
    assert "+Support answer, revision 11. Give the TRACKING link." in found["diff"]
    assert "contains" in found["reason"] and "REFUND-POLICY" in found["reason"]
    assert "v11" in found["text"] and "passes at v10 and fails at v11" in found["text"]


@pytest.mark.parametrize("n,broke_at", [(2, 2), (3, 2), (5, 5), (9, 2), (17, 9), (33, 33)])
def test_always_the_right_culprit_within_the_bound(client, scripted, tmp_path, n, broke_at):
    make_prompt(client, tmp_path, n, broke_at)
    found = bisect(client, "support/bot", case=0)
    assert (found["culprit"], found["parent"]) == (broke_at, broke_at - 1)
    assert len(found["tested"]) <= most_tests(n)


def test_a_second_bisect_makes_no_model_call(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 16, broke_at=6)
    first = bisect(client, "support/bot", case="refund")
    before = calls(scripted)
    assert before > 0
    again = bisect(client, "support/bot", case="refund")
    assert again["model_calls"] == 0 and calls(scripted) == before
    assert again["culprit"] == first["culprit"] == 6


def test_finished_runs_are_reused_and_narrow_the_range(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 16, broke_at=9)
    engine.run_tests(client, "support", prompt="support/bot", version=8)
    engine.run_tests(client, "support", prompt="support/bot", version=9)
    before = calls(scripted)
    found = bisect(client, "support/bot", case="refund")
    assert found["culprit"] == 9
    assert found["model_calls"] == 0 and calls(scripted) == before  # v8 pass, v9 fail: known, nothing run
    assert found["outcomes"][8]["reused"] and found["outcomes"][9]["reused"]


def test_good_and_bad_narrow_it_like_git(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 16, broke_at=11)
    found = bisect(client, "support/bot", case="refund", good=9, bad=13)
    assert found["culprit"] == 11
    assert set(found["tested"]) <= {9, 10, 11, 12, 13} and len(found["tested"]) <= most_tests(5)
    with pytest.raises(InvalidInput, match="must come before"):
        bisect(client, "support/bot", case="refund", good=13, bad=9)
    with pytest.raises(InvalidInput, match="v40 is not on the history"):
        bisect(client, "support/bot", case="refund", good=40)


def test_never_failed_and_never_passed_say_so(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 8, broke_at=100, tracking_from=100)
    fine = bisect(client, "support/bot", case="refund")
    assert not fine["found"] and fine["culprit"] is None
    assert "still passes at v8" in fine["text"] and "never went wrong" in fine["text"]
    assert "\n" not in fine["text"]
    broken = bisect(client, "support/bot", case="parcel")
    assert not broken["found"] and "already fails at v1" in broken["text"] and "never good" in broken["text"]
    assert len(broken["tested"]) <= most_tests(8)


def test_suite_score_below_a_bar(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 12, broke_at=7)  # 3 of 3 cases pass before v7, 2 of 3 after
    found = bisect(client, "support/bot", suite="support", min_score=90)
    assert found["culprit"] == 7 and found["parent"] == 6
    assert "100 at v6, 67 at v7, below 90" in found["text"]
    assert "case 0" in found["reason"] and "REFUND-POLICY" in found["reason"]
    low = bisect(client, "support/bot", suite="support", min_score=50)
    assert not low["found"] and "never went wrong" in low["text"]


def test_bad_requests_are_one_sentence(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 4, broke_at=3)
    with pytest.raises(InvalidInput, match="not both"):
        bisect(client, "support/bot")
    with pytest.raises(InvalidInput, match="not both"):
        bisect(client, "support/bot", case=1, min_score=80)
    with pytest.raises(NotFound, match="has no case 9"):
        bisect(client, "support/bot", case=9)
    with pytest.raises(NotFound, match="has no case 'nothing like it'"):
        bisect(client, "support/bot", case="nothing like it")


def test_cli(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 16, broke_at=5)
    runner = CliRunner()
    out = runner.invoke(cli, ["bisect", "support/bot", "--case", "refund"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0].startswith("v5 of 'support/bot' (main) broke case 0")
    assert "why: contains: output does not contain 'REFUND-POLICY'" in out.output and "+Support answer, revision 5." in out.output
    data = json.loads(runner.invoke(cli, ["bisect", "support/bot", "--case", "0", "--json"]).output)
    assert data["culprit"] == 5 and data["model_calls"] == 0
    none = runner.invoke(cli, ["bisect", "support/bot", "--case", "hello"])
    assert none.exit_code == 1 and "never went wrong" in none.output
    bad = runner.invoke(cli, ["bisect", "support/bot"])
    assert bad.exit_code == 2 and "--case" in bad.output and "--min-score" in bad.output


def test_a_version_that_cannot_be_scored_stops_it_saying_which(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 8, broke_at=5)
    for v in range(1, 9):  # every version's model answers 500 (after the gateway's retries)
        client.save("support/bot", template(v, 5) + f"#{v}", model_config={"model": "openai/fake-500"})
    found = bisect(client, "support/bot", case="refund", good=9, bad=16)
    assert not found["found"] and found["culprit"] is None
    assert found["text"].startswith("bisect stopped: case 0") and "could not be scored at v" in found["text"]
    assert "model call failed" in found["reason"]


def test_a_finished_run_passing_at_the_head_answers_at_once(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 16, broke_at=100)
    engine.run_tests(client, "support", prompt="support/bot", version=16)
    before = calls(scripted)
    found = bisect(client, "support/bot", case="refund")
    assert not found["found"] and found["tested"] == [16] and calls(scripted) == before
    assert "still passes at v16" in found["text"]


def test_a_judged_case_is_blamed_with_the_judges_reason(client, scripted, tmp_path):
    name = "support/judged"
    for v in range(1, 13):  # the judge scores an answer with GOOD in it 5 of 5, else 1
        text = f"Revision {v}. {'Be GOOD. ' if v < 8 else ''}Q: {{{{ input }}}}"
        if v == 1:
            client.create_prompt(name, text, model_config={"model": MODEL})
        else:
            client.save(name, text, model_config={"model": MODEL})
    folder = tmp_path / "tests" / "prompts"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "judged.csv").write_text("input\nhow do refunds work\nhi\n", encoding="utf-8")
    (folder / "judged.yml").write_text(f"prompt: {name}\njudge_model: openai/judge\n"
                                       "judge:\n  criteria: [Is the answer helpful?]\n", encoding="utf-8")
    found = bisect(client, name, case="refunds")
    assert (found["culprit"], found["parent"]) == (8, 7)
    assert found["reason"].startswith("judge: criteria score 0/100 < 80") and "Off target." in found["reason"]
    assert found["model_calls"] == 2 * len(found["tested"])  # the answer and its judgement, per version


def test_a_version_the_suite_cannot_feed_is_refused_before_any_call(client, scripted, tmp_path):
    make_prompt(client, tmp_path, 6, broke_at=4)
    client.save("support/bot", "Answer {{ question }}", model_config={"model": MODEL})  # v7
    with pytest.raises(InvalidInput, match=r"v7 needs \{\{ question \}\}; the suite 'support' has columns input"):
        bisect(client, "support/bot", case="refund")
    assert calls(scripted) == 0
    assert bisect(client, "support/bot", case="refund", bad=6)["culprit"] == 4  # a range it can feed
