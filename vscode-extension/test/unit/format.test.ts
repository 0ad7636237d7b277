// Result formatting and the webviews' HTML.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { formatCost, formatMetrics, formatRunResult, leaderboardRows, testResultRows, testSummary, versionDocument } from '../../src/format';
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
    const text = formatRunResult('support/refund', { output: 'Refunds take 5 days.', model: 'gpt-4o-mini', input_tokens: 42, output_tokens: 7, cost_usd: 0.0000105, latency_ms: 812.4, prompt_version: 3 });
    assert.equal(text, '# support/refund v3 on gpt-4o-mini\n# 42 in / 7 out tokens · $0.0000105 · 812 ms\n\nRefunds take 5 days.\n');
    assert.equal(formatCost(null), 'unknown cost');
    assert.equal(formatCost(1.23456), '$1.2346');
  });
});

const run: TestRun = {
  id: 'r1', suite_name: 'regression', total: 4,
  summary: { results: 4, passed: 2, total: 4, pass_rate: 0.5, score: 61.7, complete: true,
    failing: [{ case: 3, model: 'm', status: 'fail', input: { q: '<b>hi</b>' }, expected: 'x', output: 'y', why: 'contains: missing x' }] },
  results: [
    { case_idx: 1, model: 'm', status: 'pass', input: 'a', expected: 'a', output: 'a' },
    { case_idx: 3, model: 'm', status: 'fail', input: '<b>hi</b>', output: '<script>x</script>', reason: 'contains: missing x' },
    { case_idx: 2, model: 'm', status: 'error', input: 'c', error: 'timeout' },
    { case_idx: 0, model: 'm', status: 'pass', input: 'd' },
  ],
};

describe('test results', () => {
  it('puts failures and errors first, then by case', () => {
    assert.deepEqual(testResultRows(run).map((r) => [r.case, r.status]), [[2, 'error'], [3, 'fail'], [0, 'pass'], [1, 'pass']]);
  });

  it('falls back to the summary\'s failing cases', () => {
    const rows = testResultRows({ ...run, results: undefined });
    assert.deepEqual(rows.map((r) => [r.case, r.input, r.why]), [[3, '{"q":"<b>hi</b>"}', 'contains: missing x']]);
  });

  it('summarises', () => {
    assert.equal(testSummary(run), 'regression: 2/4 passed (50%), score 62');
  });

  it('renders an escaped table, failures first, no scripts', () => {
    const html = testResultsHtml(run);
    assert.ok(html.indexOf('timeout') < html.indexOf('>a<'), 'the error row comes before the passes');
    assert.ok(!html.includes('<script>x'), 'outputs are escaped');
    assert.ok(html.includes('&lt;script&gt;x&lt;/script&gt;'));
    assert.match(html, /default-src 'none'/);
    assert.match(html, /<tr class="fail">/);
  });
});

describe('arena', () => {
  const report: ArenaReport = {
    models: ['a', 'b', 'c'], matches: 30, judged: 28, errors: 2,
    overall: { a: { wins: 5, losses: 10, ties: 1, win_rate: 0.33 }, b: { wins: 12, losses: 4, ties: 0, win_rate: 0.75 }, c: { win_rate: null } },
    ratings: { b: { rating: 1061.4, low: 1020, high: 1100.2 }, a: { rating: 980 } },
    headline: { models: 'b vs a vs c', win_rates: '75% / 33% / 0%', shares: '' },
  };

  it('ranks by win rate', () => {
    assert.deepEqual(leaderboardRows(report).map((r) => [r.rank, r.model, r.rating]), [[1, 'b', '1061 (1020–1100)'], [2, 'a', '980'], [3, 'c', '']]);
  });

  it('renders the leaderboard', () => {
    const html = arenaHtml('r9', report);
    assert.ok(html.indexOf('>b<') < html.indexOf('>a<'));
    assert.match(html, /75%/);
    assert.match(html, /30 matches, 28 judged, 2 errors/);
  });
});

describe('metrics and escaping', () => {
  it('flattens nested metrics into aligned lines', () => {
    const text = formatMetrics({ calls: 10, latency_ms: { p50: 120, p95: 400 }, by: [{ model: 'm', calls: 10 }] }, 'M');
    assert.equal(text, ['M', '=', `${'calls'.padEnd(32)} 10`, `${'latency_ms.p50'.padEnd(32)} 120`, `${'latency_ms.p95'.padEnd(32)} 400`, `${'by[0].model'.padEnd(32)} m`, `${'by[0].calls'.padEnd(32)} 10`].join('\n') + '\n');
  });

  it('escapes all five characters', () => {
    assert.equal(escapeHtml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;');
  });
});
