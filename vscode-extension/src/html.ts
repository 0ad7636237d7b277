// The webviews' HTML, built as strings so it is tested without VS Code. Everything from the
// store is escaped: prompt outputs are untrusted text. Scripts are off (no `enableScripts`), and
// the content security policy allows only inline styles.
import { checkTooltip, formatScore } from './checks';
import { behaviourRows, formatCost, leaderboardRows, passedCount, testCosts, testResultRows, testSummary } from './format';
import type { ArenaReport, BehaviourDiff, CaseChange, TestRun, VersionCheck } from './types';

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
td.text { white-space: pre-wrap; min-width: 10em; max-width: 28em; overflow-wrap: anywhere; font-family: var(--vscode-editor-font-family); }
tr.fail td.status { color: var(--vscode-testing-iconFailed, #f14c4c); font-weight: bold; }
tr.pass td.status { color: var(--vscode-testing-iconPassed, #73c991); }
.summary { font-size: 1.1em; margin: 0.8em 0; }
td.win { font-weight: bold; }
tr.a td.win { color: var(--vscode-charts-blue, #3794ff); }
tr.b td.win { color: var(--vscode-charts-purple, #b180d7); }
`;

function page(title: string, body: string): string {
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline';">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body>${body}</body></html>`;
}

/** The test results: summary, per-model figures, then the cases that did not pass, worst first. */
export function testResultsHtml(run: TestRun): string {
  const rows = testResultRows(run);
  const body = rows.map((r) => `<tr class="fail">
<td>${r.case ?? ''}</td><td>${escapeHtml(r.model)}</td><td class="status">${escapeHtml(r.status)}</td>
<td class="text">${escapeHtml(r.input)}</td><td class="text">${escapeHtml(r.expected)}</td>
<td class="text">${escapeHtml(r.output)}</td><td class="text">${escapeHtml(r.why)}</td></tr>`).join('\n');
  const models = Object.entries(run.per_model ?? {}).map(([model, m]) => `<tr><td>${escapeHtml(model)}</td>${['results', 'passed', 'pass_rate', 'score', 'cost_usd'].map((k) => `<td>${escapeHtml(m[k] ?? '')}</td>`).join('')}</tr>`).join('\n');
  const passed = passedCount(run);
  const cases = rows.length
    ? `<h3>Cases that did not pass (${rows.length})</h3>
<table><thead><tr><th>case</th><th>model</th><th>status</th><th>input</th><th>expected</th><th>output</th><th>why</th></tr></thead>
<tbody>${body}</tbody></table>
<p>${passed} passed case${passed === 1 ? '' : 's'} not listed.</p>`
    : `<p>All ${passed} cases passed.</p>`;
  return page(`Test run ${run.run_id}`, `<h2>Test run <code>${escapeHtml(run.run_id)}</code> (${escapeHtml(run.status)})</h2>
<p class="summary">${escapeHtml(testSummary(run))}</p>
<p>${escapeHtml(testCosts(run))}</p>
${cases}
${models ? `<h3>Per model</h3><table><thead><tr><th>model</th><th>results</th><th>passed</th><th>pass rate</th><th>score</th><th>cost (USD)</th></tr></thead><tbody>${models}</tbody></table>` : ''}`);
}

/** The arena leaderboard. */
export function arenaHtml(report: ArenaReport): string {
  const rows = leaderboardRows(report);
  const body = rows.map((r) => `<tr><td>${r.rank}</td><td>${escapeHtml(r.model)}</td>
<td>${r.winRate === null ? '–' : `${(100 * r.winRate).toFixed(0)}%`}</td><td>${r.wins}</td><td>${r.losses}</td><td>${r.ties}</td>
<td>${escapeHtml(r.rating)}</td></tr>`).join('\n');
  const flip = report.order_flip_rate === null ? '' : `, judge order-flip rate ${(100 * report.order_flip_rate).toFixed(0)}%`;
  return page(`Arena ${report.run_id}`, `<h2>Arena <code>${escapeHtml(report.run_id)}</code> on suite ${escapeHtml(report.suite)}</h2>
<p class="summary">${escapeHtml(report.headline?.models ?? '')}: ${escapeHtml(report.headline?.win_rates ?? '')}</p>
<p>${report.matches} matches, ${report.errors} errors${flip}</p>
${report.no_separation ? `<p class="summary">${escapeHtml(report.no_separation)}</p>` : ''}
<table><thead><tr><th>#</th><th>model</th><th>win rate</th><th>wins</th><th>losses</th><th>ties</th><th>rating (95% CI)</th></tr></thead>
<tbody>${body}</tbody></table>`);
}

function caseTable(title: string, changes: CaseChange[], parent: number | null, version: number): string {
  if (changes.length === 0) {
    return '';
  }
  const rows = changes.map((c) => `<tr><td>${escapeHtml(c.case)}</td><td class="text">${escapeHtml(c.input)}</td>
<td>${escapeHtml(formatScore(c.parent_score))}</td><td>${escapeHtml(formatScore(c.score))}</td><td class="text">${escapeHtml(c.reason)}</td></tr>`).join('\n');
  return `<h3>${escapeHtml(title)} (${changes.length})</h3>
<table><thead><tr><th>case</th><th>input</th><th>${parent ? `v${parent}` : 'parent'}</th><th>v${version}</th><th>reason</th></tr></thead>
<tbody>${rows}</tbody></table>`;
}

/** Show Cases: the check on save of one version, its broken then its fixed cases. */
export function checkCasesHtml(name: string, version: number, check: VersionCheck): string {
  const [headline, ...details] = checkTooltip({ ...check, broke: [], fixed: [] });
  return page(`${name} v${version}: check`, `<h2>${escapeHtml(name)} v${version}: check on save</h2>
<p class="summary">${escapeHtml(headline)}</p>
${details.map((d) => `<p>${escapeHtml(d)}</p>`).join('\n')}
${caseTable('Broke', check.broke, check.parent_version, version)}
${caseTable('Fixed', check.fixed, check.parent_version, version)}
${check.broke.length + check.fixed.length === 0 ? '<p>No case changed its verdict.</p>' : ''}`);
}

/** Compare Behaviour: the summary, then each case's two outputs side by side, changed most first. */
export function behaviourHtml(name: string, diff: BehaviourDiff): string {
  const a = `v${diff.from_version}`;
  const b = `v${diff.to_version}`;
  const rows = behaviourRows(diff).map((r) => `<tr class="${r.winner === 'A' ? 'a' : r.winner === 'B' ? 'b' : 'tie'}">
<td>${escapeHtml(r.case)}</td><td class="text">${escapeHtml(r.input)}</td>
<td class="text">${escapeHtml(r.outputA)}</td><td class="text">${escapeHtml(r.outputB)}</td>
<td class="win">${escapeHtml(r.winner === 'A' ? a : r.winner === 'B' ? b : 'tie')}</td><td>${(100 * r.margin).toFixed(0)}%</td>
<td class="text">${escapeHtml(r.reason)}</td></tr>`).join('\n');
  return page(`${name} ${a} vs ${b}: behaviour`, `<h2>${escapeHtml(name)}: ${a} (A) vs ${b} (B) on suite ${escapeHtml(diff.suite)}</h2>
<p class="summary">${escapeHtml(diff.text)}</p>
<p>verdict: ${escapeHtml(diff.verdict)} · ${escapeHtml(formatCost(diff.cost_usd))}</p>
${rows ? `<table><thead><tr><th>case</th><th>input</th><th>A: ${a}</th><th>B: ${b}</th><th>better</th><th>changed</th><th>judge's reason</th></tr></thead>
<tbody>${rows}</tbody></table>` : '<p>The suite has no cases.</p>'}`);
}
