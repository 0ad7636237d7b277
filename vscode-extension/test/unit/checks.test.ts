// The check on save as the extension shows it (badge, icon, tooltip, the notification and when
// to give it), the behaviour diff's rows, and the two new webviews' HTML.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  BreakWatch, brokeMessage, brokenCases, caseChangeLine, checkBadge, checkIcon, checkTooltip, checkedSuites,
  formatDelta, pendingVersions, pollDelayMs,
} from '../../src/checks';
import { behaviourRows } from '../../src/format';
import { behaviourHtml, checkCasesHtml } from '../../src/html';
import { presentVersion, versionNodes } from '../../src/tree';
import type { BehaviourDiff, CaseChange, VersionCheck, VersionSummary } from '../../src/types';

function change(key: string, extra: Partial<CaseChange> = {}): CaseChange {
  return { case: key, input: `input of ${key}`, parent_score: 100, score: 0, reason: `reason for ${key}`, ...extra };
}

function check(extra: Partial<VersionCheck> = {}): VersionCheck {
  return {
    status: 'checked', suite: 'regression', score: 82, parent_version: 6, parent_score: 91, delta: -9,
    broke: [change('refund-3'), change('refund-7')], fixed: [], sample: 20, cost_usd: 0.0021,
    reason: null, text: '82 (-9: 2 broke)', checked_at: '2026-01-01T10:00:05Z', ...extra,
  };
}

function version(n: number, c: VersionCheck | null | undefined, extra: Partial<VersionSummary> = {}): VersionSummary {
  return { version: n, branch: 'main', parent: n > 1 ? n - 1 : null, merge_parent: null, message: null, author: 'ana', source: 'watch', sha256: 'abcdef0123456789', created_at: '2026-01-01T10:00:00Z', check: c, ...extra };
}

const pending = (): VersionCheck => check({ status: 'pending', score: null, delta: null, broke: [], text: 'checking…', checked_at: null });

describe('the badge, icon and tooltip of a version', () => {
  it('the badge is the server\'s wording; no suite and check off stay in the tooltip', () => {
    assert.equal(checkBadge(check()), '82 (-9: 2 broke)');
    assert.equal(checkBadge(pending()), 'checking…');
    assert.equal(checkBadge(check({ status: 'not_checked', text: 'not checked: the model is down' })), 'not checked: the model is down');
    assert.equal(checkBadge(check({ status: 'no_suite', text: 'no suite' })), undefined);
    assert.equal(checkBadge(check({ status: 'off', text: 'check off' })), undefined);
    assert.equal(checkBadge(null), undefined);
    assert.equal(checkBadge(undefined), undefined, 'an older server sends no check');
  });

  it('warns when cases broke, spins while checking, keeps the usual icon otherwise', () => {
    assert.deepEqual(checkIcon(check()), { id: 'warning', color: 'list.warningForeground' });
    assert.deepEqual(checkIcon(pending()), { id: 'loading~spin' });
    assert.equal(checkIcon(check({ broke: [], fixed: [change('a')], text: '95 (+4: 1 fixed)' })), undefined);
    assert.equal(checkIcon(null), undefined);
  });

  it('the tooltip lists the broken and fixed cases with clipped input, scores and reason', () => {
    const long = 'word '.repeat(60);
    const lines = checkTooltip(check({ broke: [change('refund-3', { input: long, reason: 'misses\nthe 30 days' })], fixed: [change('greet-1', { parent_score: 0, score: 100, reason: null })] }));
    assert.equal(lines[0], 'check on save: 82 (-9: 2 broke)');
    assert.equal(lines[1], 'suite regression, 20 cases, against v6 (91), $0.0021, at 2026-01-01T10:00:05Z');
    assert.equal(lines[2], 'broke (1):');
    assert.match(lines[3], /^ {2}refund-3 "word word .*…" 100 → 0: misses the 30 days$/);
    assert.ok(lines[3].length < 150, 'a long input is clipped');
    assert.deepEqual(lines.slice(4), ['fixed (1):', '  greet-1 "input of greet-1" 0 → 100']);
  });

  it('says why a version was not checked, once', () => {
    assert.deepEqual(checkTooltip(check({ status: 'not_checked', broke: [], text: 'not checked: the model is down', reason: 'the model is down' })), ['check on save: not checked: the model is down']);
    assert.deepEqual(checkTooltip(check({ status: 'off', broke: [], text: 'check off', reason: 'turned off in promstack.toml' })), ['check on save: check off', 'turned off in promstack.toml']);
    assert.deepEqual(checkTooltip(null), []);
  });

  it('an unscored case shows a dash, not 0', () => {
    assert.equal(caseChangeLine(change('x', { input: '', parent_score: null, score: null, reason: null })), 'x – → –');
  });

  it('the tree row carries the badge first, the warning icon and the cases', () => {
    const [node] = versionNodes('support/reply', [version(7, check())], { production: 7 }, 7);
    const shown = presentVersion(node, new Date('2026-01-01T12:00:00Z'));
    assert.equal(shown.description, '82 (-9: 2 broke) · [production] ana · 2 hours ago');
    assert.equal(shown.icon?.id, 'warning');
    assert.match(shown.tooltip, /\nbroke \(2\):\n {2}refund-3 "input of refund-3" 100 → 0: reason for refund-3\n {2}refund-7/);
    const [plain] = versionNodes('p', [version(1, null)], {}, 1);
    assert.equal(presentVersion(plain, new Date('2026-01-01T12:00:00Z')).description, 'ana · 2 hours ago');
    assert.equal(presentVersion(plain).icon, undefined);
  });
});

describe('the notification when a save breaks cases', () => {
  it('words it with the score and the delta', () => {
    assert.equal(brokeMessage('support-reply', 7, check()), 'v7 of support-reply broke 2 cases (82, -9)');
    assert.equal(brokeMessage('p', 3, check({ broke: [change('a')], score: 90.4, delta: 2.6 })), 'v3 of p broke 1 case (90, +3)');
    assert.equal(formatDelta(0.2), '=');
    assert.equal(formatDelta(null), '–');
  });

  const opened = new Date('2026-01-01T09:00:00Z');

  it('announces a version whose check finished while the window watched, once', () => {
    const watch = new BreakWatch(opened);
    assert.deepEqual(watch.observe('p', [version(7, pending()), version(6, check({ broke: [] }))]), []);
    const done = [version(7, check()), version(6, check({ broke: [] }))];
    assert.deepEqual(watch.observe('p', done).map((v) => v.version), [7]);
    assert.deepEqual(watch.observe('p', done), [], 'never twice for the same version');
    assert.deepEqual(watch.observe('other', done).map((v) => v.version), [7], "another prompt's v7 is its own (saved after the window opened)");
  });

  it('announces a save that was already checked when first seen, if it was saved after the window opened', () => {
    const watch = new BreakWatch(opened);
    assert.deepEqual(watch.observe('p', [version(8, check(), { created_at: '2026-01-01T09:30:00Z' })]).map((v) => v.version), [8]);
  });

  it('keeps quiet about what was broken before the window opened, then and later', () => {
    const watch = new BreakWatch(opened);
    const old = [version(5, check(), { created_at: '2026-01-01T08:00:00Z' })];
    assert.deepEqual(watch.observe('p', old), []);
    assert.deepEqual(watch.observe('p', old), []);
  });

  it('says nothing for a check that broke nothing, was not run, or is still running', () => {
    const watch = new BreakWatch(opened);
    const later = { created_at: '2026-01-01T09:30:00Z' };
    assert.deepEqual(watch.observe('p', [
      version(1, check({ broke: [], fixed: [change('a')] }), later),
      version(2, check({ status: 'not_checked', broke: [], text: 'not checked: down' }), later),
      version(3, pending(), later),
      version(4, null, later),
    ]), []);
  });
});

describe('what the commands offer', () => {
  const versions = [version(5, check({ suite: 'smoke', broke: [change('b')] })), version(7, check({ suite: 'regression', broke: [change('a', { input: 'newest a' })] })), version(6, pending()), version(4, null), version(3, check({ suite: 'regression', broke: [change('a')] }))];

  it('the suites the checks used, most recent first', () => {
    assert.deepEqual(checkedSuites(versions), ['regression', 'smoke']);
    assert.deepEqual(checkedSuites([version(1, null)]), []);
  });

  it('the broken cases, each with the newest version that broke it', () => {
    assert.deepEqual(brokenCases(versions), [{ case: 'a', version: 7, input: 'newest a' }, { case: 'b', version: 5, input: 'input of b' }]);
  });

  it('the versions still being checked, and how long to wait before looking again', () => {
    assert.deepEqual(pendingVersions(versions), [6]);
    assert.deepEqual([0, 1, 2, 3, 4, 10].map((a) => pollDelayMs(a)), [1000, 2000, 4000, 8000, 8000, 8000]);
    assert.equal(pollDelayMs(60), undefined, 'a check that never ends is not polled forever');
  });
});

const diff: BehaviourDiff = {
  suite: 'regression', from_version: 3, to_version: 4, a_better: 1, b_better: 2, same: 1, verdict: 'B better',
  text: 'v4 better on 2 of 4 cases, v3 on 1, same on 1', cost_usd: 0.0042,
  cases: [
    { case: 'tie', input: 'q0', output_a: 'same', output_b: 'same', winner: 'tie', reason: 'equal', margin: 0 },
    { case: 'small', input: 'q1', output_a: 'a1', output_b: 'b1', winner: 'a', reason: 'A is shorter', margin: 0.25 },
    { case: 'big', input: '<img src=x onerror=alert(1)>', output_a: '<script>alert("a")</script>', output_b: "it's & <b>", winner: 'b', reason: 'B answers', margin: 0.9 },
    { case: 'mid', input: 'q3', output_a: 'a3', output_b: 'b3', winner: 'b', reason: 'B is polite', margin: 0.25 },
  ],
};

describe('the behaviour diff', () => {
  it('rows come changed most first, ties in the server\'s order', () => {
    const rows = behaviourRows(diff);
    assert.deepEqual(rows.map((r) => [r.case, r.winner]), [['big', 'B'], ['small', 'A'], ['mid', 'B'], ['tie', 'tie']]);
  });

  it('the webview shows the summary and both outputs, escaped, with no scripts', () => {
    const html = behaviourHtml('support/<reply>', diff);
    assert.match(html, /Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';"/);
    assert.ok(!html.includes('<script>alert'), 'outputs are escaped');
    assert.ok(!html.includes('<img src=x'), 'inputs are escaped');
    assert.ok(html.includes('&lt;script&gt;alert(&quot;a&quot;)&lt;/script&gt;'));
    assert.ok(html.includes('it&#39;s &amp; &lt;b&gt;'));
    assert.ok(html.includes('support/&lt;reply&gt;: v3 (A) vs v4 (B) on suite regression'));
    assert.ok(html.includes('v4 better on 2 of 4 cases, v3 on 1, same on 1'));
    assert.ok(html.includes('verdict: B better · $0.0042'));
    const order = ['big', 'small', 'mid', 'tie'].map((k) => html.indexOf(`<td>${k}</td>`));
    assert.deepEqual([...order].sort((a, b) => a - b), order, 'changed most first');
    assert.ok(order.every((i) => i > 0));
    assert.match(html, /<tr class="b">\n<td>big<\/td>[\s\S]*?<td class="win">v4<\/td><td>90%<\/td>/);
    assert.match(behaviourHtml('p', { ...diff, cases: [] }), /The suite has no cases/);
  });

  it('Show Cases lists the broken and the fixed cases, escaped', () => {
    const html = checkCasesHtml('p', 7, check({ broke: [change('<b>k</b>', { reason: '"quoted" & <i>' })], fixed: [change('f', { parent_score: 0, score: 100 })] }));
    assert.ok(html.includes('check on save: 82 (-9: 2 broke)'));
    assert.ok(html.includes('<h3>Broke (1)</h3>') && html.includes('<h3>Fixed (1)</h3>'));
    assert.ok(html.includes('<td>&lt;b&gt;k&lt;/b&gt;</td>') && html.includes('&quot;quoted&quot; &amp; &lt;i&gt;'));
    assert.ok(html.includes('<th>v6</th><th>v7</th>'));
    assert.ok(!html.includes('<b>k'));
    assert.match(checkCasesHtml('p', 7, check({ broke: [], text: '82 (=)' })), /No case changed its verdict/);
  });
});
