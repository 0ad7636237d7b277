// Turning tool results into text people read: version documents, run output, metrics, and the
// rows of the test-results and arena tables. No `vscode` import.
import type { ArenaReport, FailingCase, PromptVersion, RunResult, TestRun } from './types';

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
    return 'unknown cost';
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
  const lines = [
    `# ${name}${r.prompt_version ? ` v${r.prompt_version}` : ''} on ${r.model ?? 'the default model'}`,
    `# ${tokens} · ${formatCost(r.cost_usd as number | null | undefined)} · ${formatMs(r.latency_ms)}${r.cache_hit ? ' · cache hit' : ''}`,
    '',
    String(r.output ?? ''),
  ];
  return lines.join('\n') + '\n';
}

/** The one-line summary of Run Prompt for a notification. */
export function runSummary(r: RunResult): string {
  return `${r.model ?? 'model'}: ${r.input_tokens ?? '?'}+${r.output_tokens ?? '?'} tokens, ${formatCost(r.cost_usd as number | null | undefined)}, ${formatMs(r.latency_ms)}`;
}

export interface ResultRow {
  case: number;
  model: string;
  status: string;
  passed: boolean;
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

const PASSING = new Set(['pass', 'passed', 'ok']);

/**
 * The test results table's rows, failures (and errors) first, then by case and model. Takes
 * the run's full results when the server sends them, else the summary's failing cases.
 */
export function testResultRows(run: TestRun): ResultRow[] {
  const raw: Array<Record<string, unknown>> = run.results ?? (run.summary?.failing as FailingCase[] | undefined as Array<Record<string, unknown>> | undefined) ?? [];
  const rows = raw.map((r) => {
    const status = text(r.status ?? (r.passed === true ? 'pass' : r.passed === false ? 'fail' : ''));
    return {
      case: Number(r.case ?? r.case_idx ?? 0),
      model: text(r.model),
      status,
      passed: PASSING.has(status.toLowerCase()),
      input: text(r.input),
      expected: text(r.expected),
      output: text(r.output),
      why: text(r.why ?? r.reason ?? r.error),
    };
  });
  return rows.sort((a, b) => Number(a.passed) - Number(b.passed) || a.case - b.case || a.model.localeCompare(b.model));
}

/** "12/15 passed (80%)": the line above the table and in the notification. */
export function testSummary(run: TestRun): string {
  const s = run.summary ?? {};
  const passed = s.passed ?? 0;
  const total = s.total ?? s.results ?? run.total ?? 0;
  const rate = s.pass_rate !== undefined ? Math.round(100 * s.pass_rate) : total ? Math.round((100 * passed) / total) : 0;
  const score = s.score !== undefined ? `, score ${Math.round(Number(s.score))}` : '';
  const incomplete = s.complete === false ? ' (incomplete)' : '';
  return `${run.suite_name ?? 'suite'}: ${passed}/${total} passed (${rate}%)${score}${incomplete}`;
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
  const r = report.ratings as unknown;
  let entry: Record<string, unknown> | undefined;
  if (Array.isArray(r)) {
    entry = r.find((x) => (x as Record<string, unknown>).model === model) as Record<string, unknown> | undefined;
  } else if (r && typeof r === 'object') {
    entry = (r as Record<string, Record<string, unknown>>)[model];
  }
  if (!entry) {
    return '';
  }
  const value = Number(entry.rating ?? entry.score ?? entry.elo);
  if (Number.isNaN(value)) {
    return '';
  }
  const low = Number(entry.low ?? (entry.ci as number[] | undefined)?.[0]);
  const high = Number(entry.high ?? (entry.ci as number[] | undefined)?.[1]);
  const ci = Number.isNaN(low) || Number.isNaN(high) ? '' : ` (${low.toFixed(0)}–${high.toFixed(0)})`;
  return `${value.toFixed(0)}${ci}`;
}

/** The arena leaderboard, best win rate first. */
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
      rating: ratingOf(report, model),
    };
  });
  rows.sort((a, b) => (b.winRate ?? -1) - (a.winRate ?? -1) || a.model.localeCompare(b.model));
  rows.forEach((row, i) => (row.rank = i + 1));
  return rows;
}

/** Show Metrics: the call log's totals as aligned `key  value` lines, nested keys dotted. */
export function formatMetrics(metrics: Record<string, unknown>, title = 'PromStack metrics'): string {
  const lines: string[] = [title, '='.repeat(title.length)];
  const walk = (prefix: string, value: unknown) => {
    if (value && typeof value === 'object' && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value as Record<string, unknown>)) {
        walk(prefix ? `${prefix}.${k}` : k, v);
      }
    } else if (Array.isArray(value) && value.every((x) => x && typeof x === 'object')) {
      value.forEach((x, i) => walk(`${prefix}[${i}]`, x));
    } else {
      lines.push(`${prefix.padEnd(32)} ${text(value)}`);
    }
  };
  walk('', metrics);
  return lines.join('\n') + '\n';
}
