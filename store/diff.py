"""Diffs and merges of prompt text.

- `line_diff`: a unified diff (difflib), as git shows it.
- `word_diff`: line-level matching first, then a word-level diff-match-patch pass only inside the
  changed hunks, with semantic cleanup: a 100 KB prompt with a few edits diffs in milliseconds.
- `merge3`: a 3-way merge. Both sides' edits since the common ancestor are computed with
  diff-match-patch in the ancestor's coordinates; edits that overlap (or touch) and differ are
  conflicts, reported and never resolved by guessing; the rest are applied exactly.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from diff_match_patch import diff_match_patch

_WORD = re.compile(r"\s+|\w+|[^\w\s]", re.UNICODE)
EQUAL, INSERT, DELETE = 0, 1, -1


def _dmp() -> diff_match_patch:
    dmp = diff_match_patch()
    dmp.Diff_Timeout = 2.0
    return dmp


@dataclass
class WordDiff:
    segments: list[tuple[int, str]]  # (0 equal | 1 inserted | -1 deleted, text)
    added_lines: int
    removed_lines: int
    added_words: int = 0
    removed_words: int = 0


def line_diff(old: str, new: str, *, old_name: str = "a", new_name: str = "b", context: int = 3) -> str:
    lines = difflib.unified_diff(
        old.splitlines(keepends=True),
        new.splitlines(keepends=True),
        fromfile=old_name,
        tofile=new_name,
        n=context,
    )
    return "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n" for line in lines)


def _tokens_to_chars(a: list[str], b: list[str]) -> tuple[str, str, list[str]]:
    """Encode each distinct token as one character, so dmp diffs tokens (words) not letters."""
    table: list[str] = [""]
    index: dict[str, int] = {}

    def encode(tokens: list[str]) -> str:
        out = []
        for token in tokens:
            code = index.get(token)
            if code is None:
                code = index[token] = len(table)
                table.append(token)
            out.append(chr(code))
        return "".join(out)

    return encode(a), encode(b), table


def _word_segments(old: str, new: str) -> list[tuple[int, str]]:
    """A word-level diff with semantic cleanup. A part rewritten almost entirely is one deletion
    and one insertion: aligning its few shared words shows nothing useful and costs
    diff-match-patch most of its time (a 100 KB rewrite took a second)."""
    old_tokens, new_tokens = _WORD.findall(old), _WORD.findall(new)
    if old and new and _rewritten(old_tokens, new_tokens):
        return [(DELETE, old), (INSERT, new)]
    dmp = _dmp()
    a, b, table = _tokens_to_chars(old_tokens, new_tokens)
    diffs = dmp.diff_main(a, b, False)
    decoded = [(op, "".join(table[ord(c)] for c in text)) for op, text in diffs]
    dmp.diff_cleanupSemantic(decoded)
    return decoded


def _rewritten(old_tokens: list[str], new_tokens: list[str]) -> bool:
    old_words = {t for t in old_tokens if not t.isspace()}
    new_words = {t for t in new_tokens if not t.isspace()}
    if min(len(old_words), len(new_words)) < 4:
        return False  # a few words: diff-match-patch is quick, and the detail helps
    return len(old_words & new_words) * 5 < min(len(old_words), len(new_words))  # < 20% shared


# Characters on both sides of one changed hunk beyond which words are not aligned across the
# whole hunk: diff-match-patch is quadratic there, and a 100 KB rewrite took its 2 s timeout.
HUNK_WORD_LIMIT = 20_000


def _pieces(old_lines: list[str], new_lines: list[str]) -> list[tuple[str, str]]:
    """A changed hunk as the parts to diff word by word: the hunk itself when small; line by
    line when it is large and has as many lines on each side; else whole lines out and in."""
    old, new = "".join(old_lines), "".join(new_lines)
    if len(old) + len(new) <= HUNK_WORD_LIMIT:
        return [(old, new)]
    if len(old_lines) == len(new_lines):
        return list(zip(old_lines, new_lines, strict=True))
    return [(old, ""), ("", new)]


def word_diff(old: str, new: str) -> WordDiff:
    a_lines = old.splitlines(keepends=True)
    b_lines = new.splitlines(keepends=True)
    matcher = difflib.SequenceMatcher(None, a_lines, b_lines, autojunk=False)
    segments: list[tuple[int, str]] = []
    added = removed = 0
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            segments.append((EQUAL, "".join(a_lines[i1:i2])))
            continue
        removed += i2 - i1
        added += j2 - j1
        for old_part, new_part in _pieces(a_lines[i1:i2], b_lines[j1:j2]):
            segments.extend(_word_segments(old_part, new_part))
    merged: list[tuple[int, str]] = []
    for op, text in segments:
        if not text:
            continue
        if merged and merged[-1][0] == op:
            merged[-1] = (op, merged[-1][1] + text)
        else:
            merged.append((op, text))
    words = {INSERT: 0, DELETE: 0}
    for op, text in merged:
        if op != EQUAL:
            words[op] += sum(1 for t in _WORD.findall(text) if not t.isspace())
    return WordDiff(merged, added, removed, words[INSERT], words[DELETE])


@dataclass
class _Edit:
    start: int  # in the ancestor's text
    end: int
    replacement: str


def _edits(base: str, other: str) -> list[_Edit]:
    """The changes from base to other as replacements of base ranges: lines matched first (as
    word_diff does), then word-aligned inside each changed hunk. Matching words across the whole
    text would let repeated lines ("a", "a", "a") align ambiguously and invent conflicts."""
    a_lines = base.splitlines(keepends=True)
    b_lines = other.splitlines(keepends=True)
    offsets = [0]
    for line in a_lines:
        offsets.append(offsets[-1] + len(line))
    # Strip the common head and tail first (as Myers-based tools do in effect): SequenceMatcher
    # alone matches the earliest longest block, which shifts an edit of repeated lines.
    lo, shortest = 0, min(len(a_lines), len(b_lines))
    while lo < shortest and a_lines[lo] == b_lines[lo]:
        lo += 1
    hi = 0
    while hi < shortest - lo and a_lines[-1 - hi] == b_lines[-1 - hi]:
        hi += 1
    edits: list[_Edit] = []
    matcher = difflib.SequenceMatcher(
        None, a_lines[lo:len(a_lines) - hi], b_lines[lo:len(b_lines) - hi], autojunk=False
    )
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            continue
        i1, i2, j1, j2 = i1 + lo, i2 + lo, j1 + lo, j2 + lo
        if tag == "replace":
            pos = offsets[i1]
            for old_part, new_part in _pieces(a_lines[i1:i2], b_lines[j1:j2]):
                edits.extend(_word_edits(old_part, new_part, pos))
                pos += len(old_part)
        else:
            edits.append(_Edit(offsets[i1], offsets[i2], "".join(b_lines[j1:j2])))
    return edits


def _word_edits(base: str, other: str, offset: int) -> list[_Edit]:
    diffs = _word_segments(base, other)
    edits: list[_Edit] = []
    pos = offset
    for op, text in diffs:
        if op == EQUAL:
            pos += len(text)
            continue
        if edits and edits[-1].end == pos and (op == INSERT or edits[-1].start <= pos):
            last = edits[-1]
        else:
            last = _Edit(pos, pos, "")
            edits.append(last)
        if op == DELETE:
            last.end += len(text)
            pos += len(text)
        else:
            last.replacement += text
    return edits


@dataclass
class MergeResult:
    text: str
    conflicts: list[dict] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.conflicts


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def _apply(base: str, start: int, end: int, edits: list[_Edit]) -> str:
    out, pos = [], start
    for e in edits:
        out.append(base[pos:e.start] + e.replacement)
        pos = e.end
    out.append(base[pos:end])
    return "".join(out)


def merge3(base: str, ours: str, theirs: str) -> MergeResult:
    """Apply theirs' change since base onto ours. Conflicts when both changed the same span."""
    if ours == base:
        return MergeResult(theirs)
    if theirs in (base, ours):
        return MergeResult(ours)
    tagged = sorted(
        [(e, "ours") for e in _edits(base, ours)] + [(e, "theirs") for e in _edits(base, theirs)],
        key=lambda item: (item[0].start, item[0].end),
    )
    # Sweep the edits in ancestor order into clusters of overlapping or touching spans.
    clusters: list[list[tuple[_Edit, str]]] = []
    cluster_end = -1
    for edit, side in tagged:
        if clusters and edit.start <= cluster_end:
            clusters[-1].append((edit, side))
            cluster_end = max(cluster_end, edit.end)
        else:
            clusters.append([(edit, side)])
            cluster_end = edit.end
    conflicts: list[dict] = []
    out: list[str] = []
    pos = 0
    for cluster in clusters:
        start = min(e.start for e, _ in cluster)
        end = max(e.end for e, _ in cluster)
        ours_text = _apply(base, start, end, [e for e, side in cluster if side == "ours"])
        theirs_text = _apply(base, start, end, [e for e, side in cluster if side == "theirs"])
        sides = {side for _, side in cluster}
        if sides == {"ours"}:
            merged = ours_text
        elif sides == {"theirs"} or ours_text == theirs_text:
            merged = theirs_text
        else:
            conflicts.append({
                "line": _line_of(base, start),
                "base": base[start:end],
                "ours": ours_text,
                "theirs": theirs_text,
            })
            merged = ours_text
        out.append(base[pos:start] + merged)
        pos = end
    out.append(base[pos:])
    return MergeResult("".join(out), conflicts)
