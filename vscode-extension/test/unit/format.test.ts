// Result formatting and the webviews' HTML.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCost, formatMetrics, formatRunResult, leaderboardRows, testCosts, testResultRows, testSummary, versionDocument } from '../../src/format';
import { arenaHtml, escapeHtml, testResultsHtml } from '../../src/html';
import type { ArenaReport, TestRun } from '../../src/types';

describe('version documents', () => {
  it('a text template is the document; a config becomes front matter', () => {
    assert.equal(versionDocument({ kind: 'text', template: 'Hello {{ name }}', model_config: {} }), 'Hello {{ name }}\n');
    assert.equal(
      versionDocument({ kind: 'text', template: 'Hi\n', model_config: { model: 'gpt-4o-mini', temperature: 0.2, stop: ['\n'], note: null } }),
      '---\nmodel: gpt-4o-mini\ntemperature: 0.2\nstop: ["\\n"]\n---\nHi\n',
    );
  });

  it('chat messages are [role] blocks', () => {
    assert.equal(
      versionDocument({ kind: 'chat', template: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: '{{ q }}' }], model_config: {} }),
      '[system]\nBe brief.\n\n[user]\n{{ q }}\n',
    );
  });
});

describe('run results', () => {
  it('shows output, tokens, cost and latency', () => {
    const text = formatRunResult('support/refund', { output: 'Refunds take 5 days.', model: 'gpt-4o-mini', input_tokens: 42, output_tokens: 7, cost_usd: 0.0000105, latency_ms: 812.4, prompt_version: 3, cache_hit: false });
    assert.equal(text, '# support/refund v3 on gpt-4o-mini\n# 42 in / 7 out tokens · $0.0000105 · 812 ms\n\nRefunds take 5 days.\n');
    assert.equal(formatCost(null), 'unpriced', 'a model without a price is not $0');
    const guarded = formatRunResult('p', { output: 'x', model: 'm', input_tokens: 1, output_tokens: 1, cost_usd: 0, latency_ms: 5, cache_hit: true, guards: { pii: { action: 'masked', entities: { email: 1 } }, injection: { action: 'passed', score: 0 }, output: null, cache_error: 'x' } });
    assert.equal(guarded, '# p on m\n# 1 in / 1 out tokens · $0 · 5 ms · cache hit\n# guards: pii masked\n\nx\n');
    assert.equal(formatCost(1.23456), '$1.2346');
  });
});

const run: TestRun = {
  run_id: 'r1', kind: 'test', status: 'done', suite: 'regression', prompt_id: 1, prompt_version: 3, models: ['m'],
  passed: false, pass_rate: 0.5, score: 61.7, results: 6, total: 6, failed: 2, errors: 1, unchecked: 0,
  input_tokens: 600, output_tokens: 120, cost_usd: 0.0123, latency_ms: { p50: 420, p95: 1300 },
  per_model: { m: { results: 6, passed: 3, pass_rate: 0.5, score: 61.7, cost_usd: 0.0123 } },
  failing: [
    { case: 3, model: 'm', status: 'fail', input: '<b>hi</b>', expected: 'x', output: '<script>x</script>', why: 'contains: missing x' },
    { case: 1, model: 'm', status: 'fail', input: 'a', expected: 'b', output: 'c', why: 'equals' },
    { case: 2, model: 'm', status: 'error', input: 'c', why: 'timeout' },
  ],
};

describe('test results', () => {
  it('puts errors first, then failures by case', () => {
    assert.deepEqual(testResultRows(run).map((r) => [r.case, r.status]), [[2, 'error'], [1, 'fail'], [3, 'fail']]);
  });

  it('summarises with the verdict, and says when a run is incomplete', () => {
    assert.equal(testSummary(run), 'regression: 3/6 passed (50%), score 62 — FAILED');
    assert.equal(testSummary({ ...run, passed: null, results: 4 }), 'regression: 1/4 passed (50%), score 62 (incomplete: 4 of 6 ran)');
    assert.equal(testCosts(run), '600 in / 120 out tokens · $0.0123 · p50 420 ms · p95 1.30 s');
  });

  it('says unscored, never score 0, and words the verdict as the server does', () => {
    const unscored = { ...run, score: null, unscored: 2, unscored_reason: 'the judge did not answer in JSON',
      verdict: 'FAILED: pass rate 50% < minimum 100% (a judged case passes at 80/100)' };
    assert.equal(testSummary(unscored), 'regression: 3/6 passed (50%), unscored (2 case(s): the judge did not answer in JSON)'
      + ' — FAILED: pass rate 50% < minimum 100% (a judged case passes at 80/100)');
    assert.doesNotMatch(testSummary(unscored), /score 0/);
    assert.match(testCosts({ ...run, unpriced_note: '3 calls unpriced (model m): add a price in config' }),
      /\$0\.0123 \(leaves out 3 calls unpriced \(model m\): add a price in config\)/);
  });

  it('renders an escaped table, worst first, no scripts', () => {
    const html = testResultsHtml(run);
    assert.ok(html.indexOf('timeout') < html.indexOf('contains: missing x'), 'the error row comes before the failures');
    assert.ok(!html.includes('<script>x'), 'outputs are escaped');
    assert.ok(html.includes('&lt;script&gt;x&lt;/script&gt;'));
    assert.match(html, /default-src 'none'/);
    assert.match(html, /Cases that did not pass \(3\)/);
    assert.match(html, /3 passed cases not listed/);
    assert.match(html, /<h3>Per model<\/h3>/);
    assert.match(html, /<td>m<\/td><td>6<\/td><td>3<\/td><td>0.5<\/td>/);
    assert.match(testResultsHtml({ ...run, failing: [], failed: 0, errors: 0 }), /All 6 cases passed/);
  });
});

describe('arena', () => {
  const report: ArenaReport = {
    run_id: 'r9', suite: 'regression', models: ['a', 'b', 'c'], matches: 30, errors: 2, order_flip_rate: 0.1,
    overall: { a: { wins: 5, losses: 10, ties: 1, win_rate: 0.33 }, b: { wins: 12, losses: 4, ties: 0, win_rate: 0.75 }, c: { win_rate: null } },
    ratings: { b: { rating: 1061.4, ci_low: 1020, ci_high: 1100.2 }, a: { rating: 980 } },
    headline: { models: 'b vs a vs c', win_rates: '75% / 33% / 0%', shares: '' },
    pairs: {}, human: {},
  };

  it('ranks by win rate', () => {
    assert.deepEqual(leaderboardRows(report).map((r) => [r.rank, r.model, r.rating]), [[1, 'b', '1061 (1020–1100)'], [2, 'a', '980'], [3, 'c', '']]);
  });

  it('renders the leaderboard', () => {
    const html = arenaHtml(report);
    assert.ok(html.indexOf('>b<') < html.indexOf('>a<'));
    assert.match(html, /75%/);
    assert.match(html, /30 matches, 2 errors, judge order-flip rate 10%/);
  });
});

describe('metrics and escaping', () => {
  it('prints the window and one aligned row per group', () => {
    const text = formatMetrics({ since: '2026-01-01T00:00:00Z', until: '2026-01-02T00:00:00Z', by: ['model'], percentile_method: 'nearest rank', groups: [
      { model: 'gpt-4o-mini', requests: 10, error_rate: 0.1, latency_p50_ms: 120 },
      { model: 'm', requests: 2, error_rate: 0, latency_p50_ms: null },
    ] }, 'M');
    assert.equal(text, [
      'M', '=', 'window: 2026-01-01T00:00:00Z .. 2026-01-02T00:00:00Z, by model', '',
      'model        requests  error_rate  latency_p50_ms',
      'gpt-4o-mini  10        0.1         120',
      'm            2         0',
      '', 'percentiles: nearest rank',
    ].join('\n') + '\n');
    assert.match(formatMetrics({ since: null, until: 'now', by: [], percentile_method: '', groups: [] }), /No model calls in this window/);
  });

  it('escapes all five characters', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
