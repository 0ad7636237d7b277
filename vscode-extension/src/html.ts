// The webviews' HTML, built as strings so it is tested without VS Code. Everything from the
// store is escaped: prompt outputs are untrusted text. Scripts are off (no `enableScripts`), and
// the content security policy allows only inline styles.
import { leaderboardRows, testResultRows, testSummary } from './format';
import type { ArenaReport, TestRun } from './types';

export function escapeHtml(value: unknown): string {
  return String(value ?? '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&#39;');
}

const STYLE = `
body { font-family: var(--vscode-font-family); color: var(--vscode-foreground); padding: 0 1em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; vertical-align: top; padding: 4px 8px; border-bottom: 1px solid var(--vscode-panel-border, #8884); }
th { position: sticky; top: 0; background: var(--vscode-editor-background); }
td.text { white-space: pre-wrap; max-width: 28em; overflow-wrap: anywhere; font-family: var(--vscode-editor-font-family); }
tr.fail td.status { color: var(--vscode-testing-iconFailed, #f14c4c); font-weight: bold; }
tr.pass td.status { color: var(--vscode-testing-iconPassed, #73c991); }
.summary { font-size: 1.1em; margin: 0.8em 0; }
`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>${body}</body></html>`;
}

/** The test results table, failures first. */
export function testResultsHtml(run: TestRun): string {
  const rows = testResultRows(run);
  const body = rows.map((r) => `<tr class="${r.passed ? 'pass' : 'fail'}">
<td>${r.case}</td><td>${escapeHtml(r.model)}</td><td class="status">${escapeHtml(r.status)}</td>
<td class="text">${escapeHtml(r.input)}</td><td class="text">${escapeHtml(r.expected)}</td>
<td class="text">${escapeHtml(r.output)}</td><td class="text">${escapeHtml(r.why)}</td></tr>`).join('\n');
  const none = rows.length ? '' : '<p>No failing cases.</p>';
  return page(`Test run ${run.id}`, `<h2>Test run <code>${escapeHtml(run.id)}</code></h2>
<p class="summary">${escapeHtml(testSummary(run))}</p>
<table><thead><tr><th>case</th><th>model</th><th>status</th><th>input</th><th>expected</th><th>output</th><th>why</th></tr></thead>
<tbody>${body}</tbody></table>${none}`);
}

/** The arena leaderboard. */
export function arenaHtml(runId: string, report: ArenaReport): string {
  const rows = leaderboardRows(report);
  const body = rows.map((r) => `<tr><td>${r.rank}</td><td>${escapeHtml(r.model)}</td>
<td>${r.winRate === null ? '–' : `${(100 * r.winRate).toFixed(0)}%`}</td><td>${r.wins}</td><td>${r.losses}</td><td>${r.ties}</td>
<td>${escapeHtml(r.rating)}</td></tr>`).join('\n');
  const headline = report.headline ? `<p class="summary">${escapeHtml(report.headline.models)}: ${escapeHtml(report.headline.win_rates)}</p>` : '';
  return page(`Arena ${runId}`, `<h2>Arena <code>${escapeHtml(runId)}</code></h2>${headline}
<p>${report.matches} matches, ${report.judged} judged, ${report.errors} errors</p>
<table><thead><tr><th>#</th><th>model</th><th>win rate</th><th>wins</th><th>losses</th><th>ties</th><th>rating (95% CI)</th></tr></thead>
<tbody>${body}</tbody></table>`);
}
