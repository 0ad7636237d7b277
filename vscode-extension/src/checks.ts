// The check on save, as the tree and the notifications show it: a version's badge, icon and
// tooltip, the sentence when a save broke cases, and the decision to say it once. The server
// words the badge (`check.text`, one wording for every face); this module only chooses where it
// goes. No `vscode` import.
import { formatCost } from './format';
import type { CaseChange, VersionCheck, VersionSummary } from './types';

const TOOLTIP_INPUT = 80;

/** The badge in the version row: the score and delta, "checking…", or why it was not checked.
 *  "no suite" and "check off" would sit on every version of such a prompt: tooltip only. */
export function checkBadge(check: VersionCheck | null | undefined): string | undefined {
  if (!check) {
    return undefined;
  }
  switch (check.status) {
    case 'pending': return check.text || 'checking…';
    case 'checked':
    case 'not_checked': return check.text;
    default: return undefined;
  }
}

export interface CheckIcon {
  id: string;
  /** A theme colour id, so the icon follows the person's theme. */
  color?: string;
}

/** A warning when the save broke cases, a spinner while checking; otherwise the usual icon. */
export function checkIcon(check: VersionCheck | null | undefined): CheckIcon | undefined {
  if (check?.status === 'checked' && check.broke.length > 0) {
    return { id: 'warning', color: 'list.warningForeground' };
  }
  if (check?.status === 'pending') {
    return { id: 'loading~spin' };
  }
  return undefined;
}

function oneLine(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max - 1)}…` : flat;
}

export function formatScore(score: number | null | undefined): string {
  return score === null || score === undefined ? '–' : String(Math.round(score));
}

export function formatDelta(delta: number | null | undefined): string {
  if (delta === null || delta === undefined) {
    return '–';
  }
  const rounded = Math.round(delta);
  return rounded > 0 ? `+${rounded}` : rounded === 0 ? '=' : String(rounded);
}

/** `refund-3 "Can I return…" 100 → 0: misses the 30 days` */
export function caseChangeLine(change: CaseChange): string {
  const input = change.input ? ` "${oneLine(change.input, TOOLTIP_INPUT)}"` : '';
  const reason = change.reason ? `: ${oneLine(change.reason, 2 * TOOLTIP_INPUT)}` : '';
  return `${change.case}${input} ${formatScore(change.parent_score)} → ${formatScore(change.score)}${reason}`;
}

/** The check's lines in a version's tooltip: the verdict, what was checked, then the broken and
 *  the fixed cases. */
export function checkTooltip(check: VersionCheck | null | undefined): string[] {
  if (!check) {
    return [];
  }
  const lines = [`check on save: ${check.text}`];
  if (check.reason && !check.text.includes(check.reason)) {
    lines.push(check.reason);
  }
  if (check.status === 'checked') {
    const parent = check.parent_version ? `, against v${check.parent_version} (${formatScore(check.parent_score)})` : '';
    const when = check.checked_at ? `, at ${check.checked_at}` : '';
    lines.push(`suite ${check.suite ?? '?'}, ${check.sample} case${check.sample === 1 ? '' : 's'}${parent}, ${formatCost(check.cost_usd)}${when}`);
  }
  for (const [title, changes] of [['broke', check.broke], ['fixed', check.fixed]] as const) {
    if (changes.length) {
      lines.push(`${title} (${changes.length}):`, ...changes.map((c) => `  ${caseChangeLine(c)}`));
    }
  }
  return lines;
}

/** "v7 of support-reply broke 2 cases (82, -9)": the notification after a save. */
export function brokeMessage(name: string, version: number, check: VersionCheck): string {
  const n = check.broke.length;
  return `v${version} of ${name} broke ${n} case${n === 1 ? '' : 's'} (${formatScore(check.score)}, ${formatDelta(check.delta)})`;
}

function brokeSomething(check: VersionCheck | null | undefined): check is VersionCheck {
  return check?.status === 'checked' && check.broke.length > 0;
}

/**
 * Decides which saves to announce: a version whose check became "checked" with broken cases
 * while this window watched (it was seen waiting for its check, or was saved after the window
 * opened). What was already broken before is old news; nothing is said twice.
 */
export class BreakWatch {
  private readonly status = new Map<string, string>();
  private readonly told = new Set<string>();

  constructor(private readonly since: Date = new Date()) {}

  /** Records a prompt's versions; returns those to announce now. */
  observe(name: string, versions: VersionSummary[]): VersionSummary[] {
    const announce: VersionSummary[] = [];
    for (const v of versions) {
      const key = `${name}@${v.version}`;
      const before = this.status.get(key);
      this.status.set(key, v.check?.status ?? 'none');
      if (!brokeSomething(v.check) || this.told.has(key)) {
        continue;
      }
      // Announced now or old news: either way, never again.
      this.told.add(key);
      const newlyChecked = before === undefined ? new Date(v.created_at) >= this.since : before !== 'checked';
      if (newlyChecked) {
        announce.push(v);
      }
    }
    return announce;
  }
}

/** The versions still being checked. */
export function pendingVersions(versions: VersionSummary[]): number[] {
  return versions.filter((v) => v.check?.status === 'pending').map((v) => v.version);
}

/** The suites a prompt's checks used, most recent first: what Compare Behaviour offers. */
export function checkedSuites(versions: VersionSummary[]): string[] {
  const byNewest = [...versions].sort((a, b) => b.version - a.version);
  return [...new Set(byNewest.map((v) => v.check?.suite).filter((s): s is string => !!s))];
}

/** The cases some save broke, most recent first, with the version that broke them: what
 *  Bisect offers to look for. */
export function brokenCases(versions: VersionSummary[]): Array<{ case: string; version: number; input: string }> {
  const found = new Map<string, { case: string; version: number; input: string }>();
  for (const v of [...versions].sort((a, b) => b.version - a.version)) {
    for (const c of v.check?.broke ?? []) {
      if (!found.has(c.case)) {
        found.set(c.case, { case: c.case, version: v.version, input: c.input });
      }
    }
  }
  return [...found.values()];
}

/** How long to wait before looking again at a check still running: 1 s, 2 s, 4 s, then every
 *  8 s; after `giveUpAfter` looks, undefined (the next save or refresh looks again). */
export function pollDelayMs(attempt: number, giveUpAfter = 60): number | undefined {
  if (attempt >= giveUpAfter) {
    return undefined;
  }
  return 1000 * Math.min(8, 2 ** attempt);
}
