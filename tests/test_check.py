"""A score delta on every save (promstack.evals.check): the annotation, bursts, leases, the
budget, a model that fails, a prompt with no suite or a suite that does not fit, and the faces
that show it (CLI history, MCP get_history / get_prompt, REST and the remote client).

The scripted fake model (tests/test_evals_fake.py): `openai/good` answers "GOOD answer: ...",
which the `openai/judge` judge passes; `openai/bad` answers "bad answer", which it fails.
"""

from __future__ import annotations

import threading
import time

import pytest
from click.testing import CliRunner

from promstack import Client
from promstack.cli import cli
from promstack.evals import check
from promstack.evals.catalog import import_suite

pytest_plugins = ("test_evals_fake",)  # the scripted fake model

CSV = "input,expected_output\n" + "".join(f'"question {i}","a good answer"\n' for i in range(6))
GOOD = {"model": "openai/good", "temperature": 0}
BAD = {"model": "openai/bad", "temperature": 0}
WAIT_S = 60  # the most a test waits for a background check (a bound, not a measurement)


def write_check_config(root, body: str) -> None:
    path = root / ".promstack" / "config.toml"
    path.write_text(path.read_text(encoding="utf-8") + "\n" + body, encoding="utf-8")


@pytest.fixture
def tied(scripted, client, tmp_path):
    """Prompt 'support/answer' on the good model with a six-case suite tied to it; checks run
    only when a test says so (no background thread)."""
    client.check_mode = "none"
    first = client.create_prompt("support/answer", "Answer well.\nQuestion: {{ input }}\n", model_config=GOOD)
    import_suite(client, text=CSV, fmt="csv", name="regression", prompt=first.prompt_id,
                 config={"judge_model": "openai/judge"})
    write_check_config(tmp_path, "[check]\ndebounce_s = 0\n")
    return first


def wait_for(client: Client, prompt, version: int) -> check.VersionCheck:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = client.version_checks(prompt, [version]).get(version)
        if found is not None and found.status != "pending":
            return found
        time.sleep(0.05)
    raise AssertionError(f"v{version} was still not checked after {WAIT_S}s")


def test_a_save_that_breaks_every_case_is_annotated_with_the_cases(tied, client, scripted):
    saved = client.save(tied.prompt_id, model_config=BAD, message="cheaper model")
    assert client.version_checks(tied.prompt_id, [saved.version])[saved.version].text == "checking…"
    done, _ = check.run_round(client, "tester")
    assert [c.status for c in done] == ["checked"]
    found = client.version_checks(tied.prompt_id, [saved.version])[saved.version]
    assert found.suite == "regression" and found.sample == 6 and found.parent_version == tied.version
    assert found.score < found.parent_score and found.delta == pytest.approx(found.score - found.parent_score)
    assert {c.case for c in found.broke} == {c["case_key"] for c in client.evals.cases(
        client.evals.suite("regression")["id"], limit=10)}
    assert not found.fixed and all(c.input.startswith("question") for c in found.broke)
    assert found.text == f"{found.score:.0f} ({round(found.delta):+d}: 6 broke)"
    # Saving the good model back fixes them all, and the old version's outputs come from the cache.
    before = dict(scripted.counts)
    back = client.save(tied.prompt_id, model_config=GOOD)
    check.run_round(client, "tester")
    again = client.version_checks(tied.prompt_id, [back.version])[back.version]
    assert len(again.fixed) == 6 and not again.broke and again.text.endswith("6 fixed)")
    assert scripted.counts.get("bad", 0) == before.get("bad", 0)  # the parent's answers were cached


def test_a_check_runs_in_the_background_of_a_long_lived_client(tied, client):
    client.check_mode = "thread"
    saved = client.save(tied.prompt_id, model_config=BAD)
    found = wait_for(client, tied.prompt_id, saved.version)
    assert found.status == "checked" and len(found.broke) == 6


def test_a_prompt_with_no_suite_is_annotated_and_nothing_runs(scripted, client):
    client.check_mode = "none"
    client.create_prompt("lonely", "Say {{ input }}", model_config=GOOD)
    saved = client.save("lonely", "Say it: {{ input }}")
    found = client.version_checks("lonely", [saved.version])[saved.version]
    assert (found.status, found.text) == ("no_suite", "no suite")
    assert check.run_round(client, "tester") == ([], None)
    assert scripted.counts == {}


def test_a_suite_whose_columns_do_not_fit_says_so_and_bills_nothing(tied, client, scripted):
    saved = client.save(tied.prompt_id, "Answer {{ question }}")
    check.run_round(client, "tester")
    found = client.version_checks(tied.prompt_id, [saved.version])[saved.version]
    assert found.status == "not_checked" and "rename the column or the variable" in found.reason
    assert found.text == f"not checked: {found.reason}" and found.text.count(".") <= 1
    assert scripted.counts == {}


def test_a_model_that_fails_mid_check_leaves_the_version_not_checked(tied, client):
    # The versions answer; then the judge's model fails on every case.
    import_suite(client, text=CSV, fmt="csv", name="regression", prompt=tied.prompt_id,
                 config={"judge_model": "openai/fake-500"})
    saved = client.save(tied.prompt_id, model_config=BAD)
    check.run_round(client, "tester")
    found = client.version_checks(tied.prompt_id, [saved.version])[saved.version]
    assert found.status == "not_checked" and "12 of 12 answers could not be scored (the judge" in found.reason
    assert client.get_prompt(tied.prompt_id).version == saved.version  # the save stands


def test_a_model_that_is_down_leaves_the_version_not_checked(tied, client):
    saved = client.save(tied.prompt_id, model_config={"model": "openai/fake-500"})
    check.run_round(client, "tester")
    found = client.version_checks(tied.prompt_id, [saved.version])[saved.version]
    assert found.status == "not_checked" and "answers could not be scored" in found.reason
    assert "500" in found.reason
    assert found.text.startswith("not checked: ")


def test_a_burst_of_saves_checks_only_the_newest(tied, client, scripted):
    saved = [client.save(tied.prompt_id, f"Answer well ({i}).\nQuestion: {{{{ input }}}}\n") for i in range(5)]
    done, _ = check.run_round(client, "tester")
    assert len(done) == 1
    found = client.version_checks(tied.prompt_id, [v.version for v in saved])
    assert found[saved[-1].version].status == "checked"
    for v in saved[:-1]:
        assert found[v.version].status == "not_checked"
        assert f"v{saved[-1].version} was saved soon after" in found[v.version].reason


def test_after_a_burst_the_newest_save_is_compared_with_the_last_checked_version(tied, client, scripted):
    first = client.save(tied.prompt_id, model_config=BAD)
    check.run_round(client, "tester")
    burst = [client.save(tied.prompt_id, f"Answer ({i}): {{{{ input }}}}") for i in range(3)]
    check.run_round(client, "tester")
    found = client.version_checks(tied.prompt_id, [burst[-1].version])[burst[-1].version]
    assert found.status == "checked" and found.parent_version == first.version
    assert scripted.counts["bad"] == 6 + 6  # the first check's, then the newest save's: no parent rerun


def test_a_burst_waits_until_it_goes_quiet(tied, client, tmp_path):
    write_check_config(tmp_path, "[prompts.\"support/answer\".check]\ndebounce_s = 3600\n")
    client.save(tied.prompt_id, "Answer (1): {{ input }}")
    saved = client.save(tied.prompt_id, "Answer (2): {{ input }}")
    done, wait = check.run_round(client, "tester")
    assert done == [] and wait is not None and 0 < wait <= 3600
    assert client.version_checks(tied.prompt_id, [saved.version])[saved.version].status == "pending"


def test_two_checkers_on_one_version_check_it_once(tied, client, scripted, isolated_store):
    saved = client.save(tied.prompt_id, model_config=BAD)
    results: list[list] = []
    start = threading.Barrier(2)

    def checker(name: str) -> None:
        with Client(isolated_store) as own:
            start.wait()
            results.append(check.run_round(own, name)[0])

    threads = [threading.Thread(target=checker, args=(n,)) for n in ("one", "two")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(len(r) for r in results) == [0, 1]
    assert scripted.counts["bad"] == 6  # each case of the new version answered once
    assert client.version_checks(tied.prompt_id, [saved.version])[saved.version].status == "checked"


def test_the_daily_budget_stops_checks_once_spent(tied, client, tmp_path):
    write_check_config(tmp_path, '[prices."openai/bad"]\ninput_per_million = 1000\noutput_per_million = 1000\n'
                       '[prices."openai/good"]\ninput_per_million = 1000\noutput_per_million = 1000\n'
                       '[prices."openai/judge"]\ninput_per_million = 0\noutput_per_million = 0\n')
    first = client.save(tied.prompt_id, model_config=BAD)
    check.run_round(client, "tester")
    spent = client.version_checks(tied.prompt_id, [first.version])[first.version]
    assert spent.status == "checked" and spent.cost_usd > 0
    write_check_config(tmp_path, f"[prompts.\"support/answer\".check]\ndaily_budget_usd = {spent.cost_usd / 2}\n")
    second = client.save(tied.prompt_id, model_config=GOOD)
    check.run_round(client, "tester")
    found = client.version_checks(tied.prompt_id, [second.version])[second.version]
    assert found.status == "not_checked" and "daily budget" in found.reason and found.cost_usd is None


def test_checks_can_be_turned_off_for_a_prompt(tied, client, tmp_path, scripted):
    write_check_config(tmp_path, "[prompts.\"support/answer\".check]\nenabled = false\n")
    saved = client.save(tied.prompt_id, model_config=BAD)
    found = client.version_checks(tied.prompt_id, [saved.version])[saved.version]
    assert (found.status, found.text) == ("off", "check off") and scripted.counts == {}


def test_a_version_saved_before_checks_existed_has_none(tied, client):
    client.store.db.execute("DELETE FROM version_checks")
    assert client.version_checks(tied.prompt_id) == {}


def test_cli_history_shows_each_check_and_a_cli_save_checks_in_a_detached_process(tied, client):
    saved = client.save(tied.prompt_id, model_config=BAD)
    check.run_round(client, "tester")
    found = client.version_checks(tied.prompt_id, [saved.version])[saved.version]
    out = CliRunner().invoke(cli, ["history", "support/answer"])
    assert out.exit_code == 0, out.output
    line = next(ln for ln in out.output.splitlines() if ln.startswith(f"v{saved.version} "))
    assert found.text in line
    # A CLI save returns at once; its check runs in a `promstack check --pending` it starts.
    out = CliRunner().invoke(cli, ["prompt", "update", "support/answer", "--template", "Answer better: {{ input }}"])
    assert out.exit_code == 0, out.output
    head = client.get_prompt(tied.prompt_id).version
    assert wait_for(client, tied.prompt_id, head).status == "checked"
    out = CliRunner().invoke(cli, ["check", "support/answer", "--json"])
    assert out.exit_code == 0 and '"status": "checked"' in out.output


def test_two_processes_on_one_version_check_it_once(tied, client, scripted, isolated_store, spawn):
    """Two checker processes (as two servers over one store would be) start on the same pending
    save at once: the lease lets one check it."""
    import os
    import subprocess
    import sys

    saved = client.save(tied.prompt_id, model_config=BAD)
    code = ("import sys; from promstack import Client; from promstack.evals import check; "
            "c = Client(sys.argv[1]); c.check_mode = 'none'; "
            "print(len(check.drain(c, holder=sys.argv[2])))")
    env = {**os.environ, "PROMSTACK_DB": str(isolated_store)}
    procs = [spawn([sys.executable, "-c", code, str(isolated_store), name], env=env, stdout=subprocess.PIPE,
                   stderr=subprocess.PIPE, text=True) for name in ("server-a", "server-b")]
    outs = [p.communicate(timeout=WAIT_S) for p in procs]
    assert all(p.returncode == 0 for p in procs), [e for _, e in outs]
    assert sorted(int(o.strip()) for o, _ in outs) == [0, 1]
    assert scripted.counts["bad"] == 6
    assert client.version_checks(tied.prompt_id, [saved.version])[saved.version].status == "checked"


def test_a_checker_killed_mid_check_is_taken_over_when_its_lease_runs_out(tied, client):
    from store import checks as rows

    saved = client.save(tied.prompt_id, model_config=BAD)
    assert rows.claim(client.store.db, tied.prompt_id, saved.version, "killed", lease_s=-1)  # its lease is over
    done, _ = check.run_round(client, "survivor")
    assert [c.status for c in done] == ["checked"]
    # The killed checker, were it to come back, writes nothing over the survivor's annotation.
    assert not rows.finish(client.store.db, tied.prompt_id, saved.version, "not_checked", {"reason": "late"},
                           holder="killed")
    assert client.version_checks(tied.prompt_id, [saved.version])[saved.version].status == "checked"


def test_the_sample_is_fixed_and_its_size_is_a_setting(tied, client, tmp_path, scripted):
    write_check_config(tmp_path, "[prompts.\"support/answer\".check]\nsample = 3\n")
    first = client.save(tied.prompt_id, model_config=BAD)
    check.run_round(client, "tester")
    found = client.version_checks(tied.prompt_id, [first.version])[first.version]
    assert found.sample == 3 and len(found.broke) == 3 and scripted.counts["bad"] == 3
    again = client.save(tied.prompt_id, "Answer badly.\nQuestion: {{ input }}\n")
    check.run_round(client, "tester")
    later = client.version_checks(tied.prompt_id, [again.version])[again.version]
    assert later.status == "checked" and scripted.counts["bad"] == 6  # the same 3 cases: parent cached


def test_a_bad_setting_is_one_sentence_on_the_version(tied, client, tmp_path):
    write_check_config(tmp_path, "[prompts.\"support/answer\".check]\nsample = 0\n")
    saved = client.save(tied.prompt_id, model_config=BAD)
    check.run_round(client, "tester")
    found = client.version_checks(tied.prompt_id, [saved.version])[saved.version]
    assert found.text == "not checked: sample in [check] must be a whole number from 1; got 0"


def test_a_suite_can_turn_its_checks_off(tied, client, scripted, tmp_path):
    folder = tmp_path / "tests" / "prompts"
    folder.mkdir(parents=True)
    (folder / "regression.csv").write_text(CSV, encoding="utf-8")
    (folder / "regression.yml").write_text(f"prompt: {tied.prompt_id}\njudge_model: openai/judge\ncheck: false\n",
                                           encoding="utf-8")
    import_suite(client, folder / "regression.csv")
    saved = client.save(tied.prompt_id, model_config=BAD)
    check.run_round(client, "tester")
    found = client.version_checks(tied.prompt_id, [saved.version])[saved.version]
    assert (found.status, found.text) == ("off", "check off") and "check: false" in found.reason
    assert scripted.counts == {}


def test_a_slow_check_keeps_its_lease(tied, client, tmp_path, scripted, monkeypatch):
    from store import checks as rows

    write_check_config(tmp_path, "[prompts.\"support/answer\".check]\nlease_s = 0.3\n")
    scripted.latency = 0.25  # two rounds of calls: longer than the lease, renewed every 0.1 s
    saved = client.save(tied.prompt_id, model_config=BAD)
    renewed: list[bool] = []
    real_renew = rows.renew
    monkeypatch.setattr(rows, "renew", lambda *args: renewed.append(real_renew(*args)) or renewed[-1])
    done, _ = check.run_round(client, "slow")
    assert [c.status for c in done] == ["checked"] and renewed and all(renewed)
    assert client.version_checks(tied.prompt_id, [saved.version])[saved.version].status == "checked"
