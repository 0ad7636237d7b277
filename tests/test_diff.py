"""Diffs between versions: unified line diff, word diff with counts, model config changes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from promstack import NotFound
from store.diff import merge3, word_diff


def test_unified_and_word_diff_between_versions(client):
    client.create_prompt("p", "Greet the customer.\nAnswer briefly.\nSign off.\n", model_config={"temperature": 0.2})
    client.save("p", "Greet the customer warmly.\nAnswer briefly.\n", model_config={"temperature": 0.5})
    d = client.diff("p", 1, 2)
    assert (d.from_version, d.to_version, d.name) == (1, 2, "p")
    assert d.unified.splitlines() == [
        "--- p@1",
        "+++ p@2",
        "@@ -1,3 +1,2 @@",
        "-Greet the customer.",
        "+Greet the customer warmly.",
        " Answer briefly.",
        "-Sign off.",
    ]
    assert (d.added, d.removed) == (1, 2)
    assert (1, " warmly") in d.words
    assert (-1, "Sign off.\n") in d.words
    assert (d.added_words, d.removed_words) == (1, 3)
    # the words re-assemble both sides exactly
    assert "".join(t for op, t in d.words if op != 1) == "Greet the customer.\nAnswer briefly.\nSign off.\n"
    assert "".join(t for op, t in d.words if op != -1) == "Greet the customer warmly.\nAnswer briefly.\n"
    assert d.config_changes == {"temperature": {"from": 0.2, "to": 0.5}}


def test_diff_defaults_to_the_head_of_main(client):
    client.create_prompt("p", "a")
    client.save("p", "b")
    client.save("p", "c")
    assert client.diff("p", 1).to_version == 3


def test_diff_of_a_version_with_itself_is_empty(client):
    client.create_prompt("p", "a\nb\n")
    d = client.diff("p", 1, 1)
    assert (d.unified, d.added, d.removed, d.added_words, d.removed_words) == ("", 0, 0, 0, 0)
    assert d.words == [(0, "a\nb\n")]
    assert d.config_changes == {}


def test_config_key_added_and_removed(client):
    client.create_prompt("p", "x", model_config={"model": "a", "max_tokens": 10})
    client.save("p", model_config={"model": "a", "temperature": 1})
    assert client.diff("p", 1, 2).config_changes == {
        "max_tokens": {"from": 10, "to": None},
        "temperature": {"from": None, "to": 1},
    }


def test_missing_final_newline_is_marked(client):
    client.create_prompt("p", "a\nb")
    client.save("p", "a\nc")
    assert "\\ No newline at end of file" in client.diff("p", 1, 2).unified


def test_diff_of_chat_prompts(client):
    client.create_prompt("chat", [{"role": "system", "content": "Be kind."}, {"role": "user", "content": "{{ q }}"}])
    client.save("chat", [{"role": "system", "content": "Be very kind."}, {"role": "user", "content": "{{ q }}"}])
    d = client.diff("chat", 1, 2)
    assert '-  "content": "Be kind."' in d.unified
    assert '+  "content": "Be very kind."' in d.unified
    assert (d.added, d.removed, d.added_words, d.removed_words) == (1, 1, 1, 0)


def test_diff_of_an_unknown_version(client):
    client.create_prompt("p", "a")
    with pytest.raises(NotFound, match="'p' has no version 4; its newest is 1"):
        client.diff("p", 4)


def test_word_diff_counts_words_not_characters():
    d = word_diff("the quick brown fox\n", "the slow brown dog\n")
    assert (d.added_words, d.removed_words) == (2, 2)
    assert (d.added_lines, d.removed_lines) == (1, 1)


def test_word_diff_of_large_texts_is_exact():
    old = "".join(f"line {i} says something about refunds and orders\n" for i in range(3000))
    new_lines = old.splitlines(keepends=True)
    for i in range(0, 3000, 100):
        new_lines[i] = f"line {i} says something else entirely\n"
    new = "".join(new_lines)
    d = word_diff(old, new)
    assert (d.added_lines, d.removed_lines) == (30, 30)
    assert "".join(t for op, t in d.segments if op != 1) == old
    assert "".join(t for op, t in d.segments if op != -1) == new


@pytest.mark.parametrize(
    ("base", "ours", "theirs", "merged"),
    [
        ("a\nb\nc\n", "A\nb\nc\n", "a\nb\nC\n", "A\nb\nC\n"),
        ("a\nb\nc\n", "a\nb\nc\n", "a\nB\nc\n", "a\nB\nc\n"),
        ("a\nb\nc\n", "a\nB\nc\n", "a\nb\nc\n", "a\nB\nc\n"),
        ("a\nb\nc\n", "a\nB\nc\n", "a\nB\nc\n", "a\nB\nc\n"),
        ("one two three four five", "one 2 three four five", "one two three four 5", "one 2 three four 5"),
        ("x\n", "x\ny\n", "z\nx\n", "z\nx\ny\n"),
    ],
)
def test_merge3_clean_cases(base, ours, theirs, merged):
    result = merge3(base, ours, theirs)
    assert result.clean
    assert result.text == merged


def test_merge3_conflict_reports_the_line_and_both_sides():
    result = merge3("a\nb\nc\n", "a\nours\nc\n", "a\ntheirs\nc\n")
    assert not result.clean
    [c] = result.conflicts
    assert c["line"] == 2 and c["base"] == "b" and c["ours"] == "ours" and c["theirs"] == "theirs"


_words = st.sampled_from(["the", "order", "refund", "a", "is", "\n", " ", ".", "customer"])
_line = st.lists(_words.filter(lambda w: w != "\n"), min_size=1, max_size=6).map(" ".join)


def _far_apart_edits(data, base_lines):
    n = len(base_lines)
    ours_at = data.draw(st.sets(st.sampled_from(range(0, n, 4))))
    theirs_at = data.draw(st.sets(st.sampled_from(range(2, n, 4))))
    new = st.lists(st.sampled_from(["NEW", "words", "here", "the", "order"]), min_size=1, max_size=5).map(" ".join)
    ours_lines, theirs_lines, expected = list(base_lines), list(base_lines), list(base_lines)
    for i in ours_at:
        ours_lines[i] = expected[i] = data.draw(new)
    for i in theirs_at:
        theirs_lines[i] = expected[i] = data.draw(new)
    join = "\n".join
    return (join(base_lines) + "\n", join(ours_lines) + "\n", join(theirs_lines) + "\n",
            join(expected) + "\n")


@settings(max_examples=300, deadline=None)
@given(data=st.data(), base_lines=st.lists(_line, min_size=4, max_size=14, unique=True))
def test_merge3_of_edits_to_distinct_lines_far_apart_is_clean(data, base_lines):
    """Each side rewrites lines of its own, never next to one the other side rewrote: the merge
    is clean and holds both sides' lines exactly."""
    base, ours, theirs, expected = _far_apart_edits(data, base_lines)
    result = merge3(base, ours, theirs)
    assert result.conflicts == []
    assert result.text == expected


@settings(max_examples=300, deadline=None)
@given(data=st.data(), base_lines=st.lists(st.sampled_from(["a", "b", ""]), min_size=4, max_size=14))
def test_merge3_of_repeated_lines_is_exact_or_a_conflict(data, base_lines):
    """With repeated lines which of them a side changed is ambiguous (for git too): a conflict is
    acceptable and so is a shifted position, but a clean merge never loses or duplicates a line."""
    base, ours, theirs, expected = _far_apart_edits(data, base_lines)
    result = merge3(base, ours, theirs)
    if result.clean:
        assert sorted(result.text.splitlines()) == sorted(expected.splitlines())


def _big(seed: int, lines: int = 1500) -> list[str]:
    import random

    rng = random.Random(seed)
    words = ["refund", "order", "policy", "days", "receipt", "store", "credit", "card", "label", "the"]
    return [" ".join(rng.choice(words) for _ in range(10)) + "\n" for _ in range(lines)]


@pytest.mark.parametrize(
    "rewrite",
    [
        lambda ls: ["".join(reversed(line.split())) + "\n" for line in ls],  # same count, reordered
        lambda ls: [line.replace("the", "THE") for line in ls],  # a word in many lines
        lambda ls: [f"brand new line {i} with other words entirely\n" for i in range(len(ls))],
        lambda ls: [f"fewer, new lines {i}\n" for i in range(len(ls) // 3)],  # a big hunk, other count
        lambda ls: ls[::2],
    ],
)
def test_word_diff_of_large_rewrites_is_exact(rewrite):
    old_lines = _big(1)
    old, new = "".join(old_lines), "".join(rewrite(old_lines))
    d = word_diff(old, new)
    assert "".join(t for op, t in d.segments if op != 1) == old
    assert "".join(t for op, t in d.segments if op != -1) == new


def test_a_line_rewritten_entirely_is_one_deletion_and_one_insertion():
    d = word_diff("keep\nalpha beta gamma delta epsilon\n", "keep\none two three four five six\n")
    assert d.segments == [
        (0, "keep\n"), (-1, "alpha beta gamma delta epsilon\n"), (1, "one two three four five six\n"),
    ]
    assert (d.added_words, d.removed_words) == (6, 5)


def test_merge3_of_a_large_rewrite_and_a_distant_edit():
    base = _big(2)
    ours = [f"rewritten opening {i}\n" for i in range(700)] + base[1000:]  # 1000 lines -> 700
    theirs = base[:-1] + ["the last line, edited\n"]
    result = merge3("".join(base), "".join(ours), "".join(theirs))
    assert result.clean
    assert result.text == "".join(ours[:-1] + ["the last line, edited\n"])
