"""The version model against a plain model of it: random sequences of saves, branches, rollbacks,
labels and merges keep numbers, heads, parents, labels and dedupe exactly as DESIGN.md says."""

from __future__ import annotations

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from promstack import Client, InvalidInput, MergeConflict

LINES = ["Greet the customer.", "Answer briefly.", "Be polite.", "Cite the policy.", "Sign off."]
texts = st.lists(st.sampled_from(LINES), min_size=1, max_size=4).map(lambda xs: "\n".join(xs) + "\n")
configs = st.sampled_from([{}, {"temperature": 0.2}, {"temperature": 0.7}, {"model": "m"}])


class VersionModel(RuleBasedStateMachine):
    branch_names = Bundle("branch_names")

    def __init__(self) -> None:
        super().__init__()
        self.client = Client(":memory:", actor="model")
        first = self.client.create_prompt("p", "Greet the customer.\n")
        assert first.version == 1
        # number -> (template, config, branch, parent, source)
        self.versions = {1: ("Greet the customer.\n", {}, "main", None, "sdk")}
        self.heads = {"main": 1}
        self.labels: dict[str, int] = {}
        self.audit_rows = 1

    def teardown(self) -> None:
        assert self.client.verify_audit()[0]
        assert len(self.client.audit_log(limit=100_000)) == self.audit_rows
        self.client.close()

    def _content(self, number: int) -> tuple[str, dict]:
        template, config, *_ = self.versions[number]
        return template, config

    def _append(self, saved, branch: str, parent: int, source: str) -> None:
        assert saved.created
        assert saved.version == len(self.versions) + 1
        assert (saved.branch, saved.parent, saved.source) == (branch, parent, source)
        self.versions[saved.version] = (saved.template, saved.model_config, branch, parent, source)
        self.heads[branch] = saved.version
        self.audit_rows += 1

    @rule(target=branch_names, name=st.sampled_from(["exp", "fix", "tone"]), data=st.data())
    def create_branch(self, name, data):
        if name in self.heads:
            try:
                self.client.create_branch("p", name)
            except InvalidInput:
                return name
            raise AssertionError("a second branch of the same name was created")
        start = data.draw(st.none() | st.sampled_from(sorted(self.versions)))
        branch = self.client.create_branch("p", name, from_version=start)
        assert branch.head == (start if start is not None else self.heads["main"])
        self.heads[name] = branch.head
        self.audit_rows += 1
        return name

    @rule(branch=st.sampled_from(["main"]) | branch_names, template=texts, config=configs | st.none())
    def save(self, branch, template, config):
        head = self.heads[branch]
        expected = (template, self._content(head)[1] if config is None else config)
        saved = self.client.save("p", template, model_config=config, branch=branch)
        if expected == self._content(head):
            assert not saved.created and saved.version == head
        else:
            self._append(saved, branch, head, "sdk")
            assert (saved.template, saved.model_config) == expected

    @rule(branch=st.sampled_from(["main"]) | branch_names, data=st.data())
    def rollback(self, branch, data):
        to = data.draw(st.sampled_from(sorted(self.versions)))
        head = self.heads[branch]
        if self._content(to) == self._content(head):
            try:
                self.client.rollback("p", to, branch=branch)
            except InvalidInput:
                return
            raise AssertionError("a rollback to the head's content was accepted")
        saved = self.client.rollback("p", to, branch=branch)
        self._append(saved, branch, head, "rollback")
        assert (saved.template, saved.model_config) == self._content(to)

    @rule(label=st.sampled_from(["production", "staging", "canary"]), data=st.data())
    def set_label(self, label, data):
        to = data.draw(st.sampled_from(sorted(self.versions)))
        # production and staging are gated environments: they move forced, with a reason, as a
        # forced deployment (deploy_forced, set_label and deploy rows; none when unchanged)
        gated = label != "canary"
        move = self.client.set_label("p", label, to, force=gated, reason="model" if gated else None)
        assert (move.from_version, move.to_version) == (self.labels.get(label), to)
        self.audit_rows += 3 if gated and self.labels.get(label) != to else 0 if gated else 1
        self.labels[label] = to

    @precondition(lambda self: len(self.heads) > 1)
    @rule(data=st.data())
    def merge(self, data):
        branch = data.draw(st.sampled_from(sorted(set(self.heads) - {"main"})))
        into = data.draw(st.sampled_from(sorted(set(self.heads) - {branch})))
        ours, theirs = self.heads[into], self.heads[branch]
        try:
            merged = self.client.merge("p", branch, into=into)
        except (MergeConflict, InvalidInput) as exc:
            event(f"merge refused: {type(exc).__name__}")
            assert self.heads[into] == ours  # nothing moved
            return
        event("merge written")
        assert merged.merge_parent == theirs
        self._append(merged, into, ours, "merge")
        if self._content(ours) == self._content(self._base(ours, theirs)):
            # only the branch changed since the fork point: the result is the branch's content
            assert (merged.template, merged.model_config) == self._content(theirs)
        self._merge_parents = getattr(self, "_merge_parents", {})
        self._merge_parents[merged.version] = theirs

    def _ancestors(self, number: int) -> set[int]:
        seen, todo = set(), [number]
        merge_parents = getattr(self, "_merge_parents", {})
        while todo:
            n = todo.pop()
            if n is None or n in seen:
                continue
            seen.add(n)
            todo.extend([self.versions[n][3], merge_parents.get(n)])
        return seen

    def _base(self, a: int, b: int) -> int:
        return max(self._ancestors(a) & self._ancestors(b))

    @invariant()
    def store_matches_the_model(self):
        history = self.client.history("p")
        assert [v.version for v in history] == sorted(self.versions, reverse=True)
        for v in history:
            template, config, branch, parent, source = self.versions[v.version]
            assert (v.template, v.model_config, v.branch, v.parent, v.source) == (
                template, config, branch, parent, source)
        assert {b.name: b.head for b in self.client.list_branches("p")} == self.heads
        assert self.client.labels("p") == {"latest": self.heads["main"], **self.labels}
        for branch, head in self.heads.items():
            line = [v.version for v in self.client.history("p", branch=branch)]
            expected, n = [], head
            while n is not None:
                expected.append(n)
                n = self.versions[n][3]
            assert line == expected


VersionModel.TestCase.settings = settings(max_examples=60, stateful_step_count=25, deadline=None)
test_version_model = VersionModel.TestCase
