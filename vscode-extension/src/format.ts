// Turning tool results into text people read: version documents, run output, metrics, and the
// rows of the test-results and arena tables. No `vscode` import.
import type { ArenaReport, BehaviourDiff, MetricsResult, PromptVersion, RunResult, TestRun } from './types';

function scalar(value: unknown): string {
  return typeof value === 'string' && /^[\w./:@ -]*$/.test(value) && value.trim() === value && value !== ''
    ? value
    : JSON.stringify(value);
}

/**
 * A version as a document: front matter with the model config (only when there is one, so a
 * config change shows in a diff), then the template; chat messages as `[role]` blocks.
 */
export function versionDocument(v: Pick<PromptVersion, 'kind' | 'template' | 'model_config'>): string {
  const config = Object.entries(v.model_config ?? {}).filter(([, value]) => value !== null && value !== undefined);
  const head = config.length ? `---\n${config.map(([k, value]) => `${k}: ${scalar(value)}`).join('\n')}\n---\n` : '';
  let body: string;
  if (typeof v.template === 'string') {
    body = v.template;
  } else {
    body = v.template.map((m) => `[${m.role}${m.name ? ` ${m.name}` : ''}]\n${m.content}`).join('\n\n');
  }
  return head + body + (body.endsWith('\n') ? '' : '\n');
}

export function formatCost(usd: number | null | undefined): string {
  if (usd === null || usd === undefined || Number.isNaN(usd)) {
    return 'unpriced';
  }
  if (usd === 0) {
    return '$0';
  }
  return usd < 0.01 ? `$${usd.toFixed(8).replace(/0+$/, '')}` : `$${usd.toFixed(4)}`;
}

export function formatMs(ms: number | null | undefined): string {
  if (ms === null || ms === undefined) {
    return '?';
  }
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${Math.round(ms)} ms`;
}

/** Run Prompt's report: the output first, then model, tokens, cost and latency. */
export function formatRunResult(name: string, r: RunResult): string {
  const tokens = `${r.input_tokens ?? '?'} in / ${r.output_tokens ?? '?'} out tokens`;
  const guards = firedGuards(r.guards);
  const lines = [
    `# ${name}${r.prompt_version ? ` v${r.prompt_version}` : ''} on ${r.model ?? 'the default model'}`,
    `# ${tokens} · ${formatCost(r.cost_usd)} · ${formatMs(r.latency_ms)}${r.cache_hit ? ' · cache hit' : ''}`,
    ...(guards.length ? [`# guards: ${guards.join(', ')}`] : []),
    '',
    String(r.output ?? ''),
  ];
  return lines.join('\n') + '\n';
}

/** The guards that acted (`pii masked`, `injection flagged`); `passed` is nothing to report. */
export function firedGuards(guards: Record<string, unknown> | undefined): string[] {
  return Object.entries(guards ?? {})
    .map(([name, report]) => [name, (report as { action?: unknown } | null)?.action] as const)
    .filter(([, action]) => typeof action === 'string' && action !== 'passed')
    .map(([name, action]) => `${name} ${action}`);
}

/** The one-line summary of Run Prompt for a notification. */
export function runSummary(r: RunResult): string {
  return `${r.model ?? 'model'}: ${r.input_tokens ?? '?'}+${r.output_tokens ?? '?'} tokens, ${formatCost(r.cost_usd)}, ${formatMs(r.latency_ms)}`;
}

export interface ResultRow {
  case: number | null;
  model: string;
  status: string;
  input: string;
  expected: string;
  output: string;
  why: string;
}

function text(value: unknown): string {
  if (value === null || value === undefined) {
    return '';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// Worst first: a crash hides more than a wrong answer, which says more than an unchecked case.
const SEVERITY: Record<string, number> = { error: 0, fail: 1, failed: 1, unchecked: 2 };

/**
 * The test results table's rows: the cases that did not pass (the server lists those, worst
 * first), errors before failures before unchecked, then by case and model.
 */
export function testResultRows(run: Pick<TestRun, 'failing'>): ResultRow[] {
  const rows = (run.failing ?? []).map((f) => ({
    case: f.case,
    model: text(f.model),
    status: text(f.status),
    input: text(f.input),
    expected: text(f.expected),
    output: text(f.output),
    why: text(f.why),
  }));
  const rank = (r: ResultRow) => SEVERITY[r.status.toLowerCase()] ?? 3;
  return rows.sort((a, b) => rank(a) - rank(b) || (a.case ?? -1) - (b.case ?? -1) || a.model.localeCompare(b.model));
}

/** The cases that passed: results less the failed, errored and unchecked ones. */
export function passedCount(run: Pick<TestRun, 'results' | 'failed' | 'errors' | 'unchecked'>): number {
  return Math.max(0, run.results - run.failed - run.errors - run.unchecked);
}

/** "regression: 12/15 passed (80%), score 81": the line above the table and in the notification. */
export function testSummary(run: TestRun): string {
  const verdict = run.verdict ? ` — ${run.verdict}` : run.passed === true ? ' — PASSED' : run.passed === false ? ' — FAILED' : '';
  const incomplete = run.results < run.total ? ` (incomplete: ${run.results} of ${run.total} ran)` : '';
  // An unscored case is not a 0: a run with one has no score at all, and says why.
  const score = run.score === null || run.score === undefined
    ? `unscored (${run.unscored ?? 0} case(s): ${run.unscored_reason ?? 'no reason recorded'})`
    : `score ${Math.round(run.score)}`;
  return `${run.suite}: ${passedCount(run)}/${run.results} passed (${Math.round(100 * run.pass_rate)}%), ${score}${verdict}${incomplete}`;
}

/** Tokens, cost and latency of a run, for under the summary. */
export function testCosts(run: TestRun): string {
  const unpriced = run.unpriced_note ? ` (leaves out ${run.unpriced_note})` : '';
  return `${run.input_tokens} in / ${run.output_tokens} out tokens · ${formatCost(run.cost_usd)}${unpriced} · p50 ${formatMs(run.latency_ms?.p50)} · p95 ${formatMs(run.latency_ms?.p95)}`;
}

export interface LeaderRow {
  rank: number;
  model: string;
  winRate: number | null;
  wins: number;
  losses: number;
  ties: number;
  rating: string;
}

function ratingOf(report: ArenaReport, model: string): string {
  const entry = report.ratings?.[model];
  if (!entry || typeof entry.rating !== 'number') {
    return '';
  }
  const { ci_low: low, ci_high: high } = entry;
  const ci = typeof low === 'number' && typeof high === 'number' ? ` (${low.toFixed(0)}–${high.toFixed(0)})` : '';
  return `${entry.rating.toFixed(0)}${ci}`;
}

/** The arena leaderboard, best win rate first (then rating). */
export function leaderboardRows(report: ArenaReport): LeaderRow[] {
  const rows = report.models.map((model) => {
    const o = report.overall?.[model] ?? {};
    return {
      rank: 0,
      model,
      winRate: typeof o.win_rate === 'number' ? o.win_rate : null,
      wins: Number(o.wins ?? 0),
      losses: Number(o.losses ?? 0),
      ties: Number(o.ties ?? 0),
      rating: report.no_separation ? '–' : ratingOf(report, model),
      score: report.ratings?.[model]?.rating ?? -Infinity,
    };
  });
  rows.sort((a, b) => (b.winRate ?? -1) - (a.winRate ?? -1) || b.score - a.score || a.model.localeCompare(b.model));
  return rows.map(({ score: _score, ...row }, i) => ({ ...row, rank: i + 1 }));
}

function cell(value: unknown): string {
  if (typeof value === 'number') {
    return Number.isInteger(value) ? String(value) : value.toFixed(4).replace(/0+$/, '').replace(/\.$/, '');
  }
  return text(value);
}

/** Show Metrics: the window, then one aligned row per group of the call log. */
export function formatMetrics(m: MetricsResult, title = 'PromStack metrics'): string {
  const lines = [title, '='.repeat(title.length), `window: ${m.since ?? 'the beginning'} .. ${m.until}${m.by.length ? `, by ${m.by.join(', ')}` : ''}`, ''];
  if (m.groups.length === 0) {
    lines.push('No model calls in this window.');
    return lines.join('\n') + '\n';
  }
  const columns = [...new Set(m.groups.flatMap((g) => Object.keys(g)))];
  const table = [columns, ...m.groups.map((g) => columns.map((c) => cell(g[c])))];
  const widths = columns.map((_, i) => Math.max(...table.map((row) => row[i].length)));
  for (const row of table) {
    lines.push(row.map((v, i) => v.padEnd(widths[i])).join('  ').trimEnd());
  }
  lines.push('', `percentiles: ${m.percentile_method}`);
  return lines.join('\n') + '\n';
}

export interface BehaviourRow {
  case: string;
  input: string;
  outputA: string;
  outputB: string;
  /** 'A', 'B' or 'tie', as the table's column says it. */
  winner: string;
  reason: string;
  margin: number;
}

/** The behaviour diff's rows, the cases that changed most first (the server's order on ties). */
export function behaviourRows(diff: Pick<BehaviourDiff, 'cases'>): BehaviourRow[] {
  return (diff.cases ?? [])
    .map((c, i) => ({ i, row: {
      case: text(c.case),
      input: text(c.input),
      outputA: text(c.output_a),
      outputB: text(c.output_b),
      winner: c.winner === 'a' ? 'A' : c.winner === 'b' ? 'B' : 'tie',
      reason: text(c.reason),
      margin: typeof c.margin === 'number' ? c.margin : 0,
    } }))
    .sort((x, y) => y.row.margin - x.row.margin || x.i - y.i)
    .map(({ row }) => row);
}
