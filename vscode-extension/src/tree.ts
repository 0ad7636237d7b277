// The PromStack view's shape: prompts grouped into folders by the '/' in their names, and each
// prompt's versions with their labels. Plain data; the tree provider turns it into TreeItems.
// No `vscode` import.
import { checkBadge, checkIcon, checkTooltip, type CheckIcon } from './checks';
import type { PromptSummary, VersionSummary } from './types';

export interface FolderNode {
  kind: 'folder';
  path: string; // 'support' or 'support/billing'
  label: string; // the last segment
  children: TreeNode[];
}

export interface PromptNode {
  kind: 'prompt';
  name: string;
  label: string; // the last segment of the name
  prompt: PromptSummary;
}

export interface VersionNode {
  kind: 'version';
  name: string;
  version: VersionSummary;
  labels: string[];
  isHead: boolean;
}

export type TreeNode = FolderNode | PromptNode | VersionNode;

function sortNodes(nodes: TreeNode[]): TreeNode[] {
  // Folders first, then prompts, each alphabetically, as a file explorer does.
  const key = (n: TreeNode) => (n.kind === 'folder' ? `0${n.label}` : `1${n.kind === 'prompt' ? n.label : ''}`);
  return nodes.sort((a, b) => key(a).localeCompare(key(b)));
}

/** Builds the folder tree from a prompt listing; archived prompts are left out. */
export function buildTree(prompts: PromptSummary[]): TreeNode[] {
  const root: FolderNode = { kind: 'folder', path: '', label: '', children: [] };
  const folders = new Map<string, FolderNode>([['', root]]);
  const folderFor = (path: string): FolderNode => {
    const found = folders.get(path);
    if (found) {
      return found;
    }
    const cut = path.lastIndexOf('/');
    const parent = folderFor(cut < 0 ? '' : path.slice(0, cut));
    const node: FolderNode = { kind: 'folder', path, label: path.slice(cut + 1), children: [] };
    parent.children.push(node);
    folders.set(path, node);
    return node;
  };
  for (const prompt of prompts) {
    if (prompt.archived) {
      continue;
    }
    const segments = prompt.name.split('/').filter((s) => s.length > 0);
    const label = segments.pop() ?? prompt.name;
    folderFor(segments.join('/')).children.push({ kind: 'prompt', name: prompt.name, label, prompt });
  }
  for (const folder of folders.values()) {
    sortNodes(folder.children);
  }
  return root.children;
}

/** The store's `latest` label always follows main's head, which the tree marks anyway. */
export const IMPLIED_LABELS = new Set(['latest']);

/** Labels worth a badge: `production=v1`, not the implied `latest`. */
export function shownLabels(labels: Record<string, number>): Array<[string, number]> {
  return Object.entries(labels).filter(([l]) => !IMPLIED_LABELS.has(l)).sort(([a], [b]) => a.localeCompare(b));
}

/** A prompt's version nodes, newest first, each with the labels pointing at it. */
export function versionNodes(name: string, versions: VersionSummary[], labels: Record<string, number>, head: number | null): VersionNode[] {
  const byVersion = new Map<number, string[]>();
  for (const [label, version] of shownLabels(labels)) {
    byVersion.set(version, [...(byVersion.get(version) ?? []), label]);
  }
  return [...versions]
    .sort((a, b) => b.version - a.version)
    .map((v) => ({
      kind: 'version' as const,
      name,
      version: v,
      labels: (byVersion.get(v.version) ?? []).sort(),
      isHead: v.version === head,
    }));
}

/** "2 hours ago" style times; `now` is a parameter so tests are exact. */
export function relativeTime(iso: string, now: Date = new Date()): string {
  const then = new Date(iso);
  if (Number.isNaN(then.getTime())) {
    return iso;
  }
  const seconds = Math.round((now.getTime() - then.getTime()) / 1000);
  if (seconds < 45) {
    return 'just now';
  }
  const units: Array<[number, string]> = [[60, 'minute'], [3600, 'hour'], [86400, 'day'], [2592000, 'month'], [31536000, 'year']];
  let chosen: [number, string] = units[0];
  for (const unit of units) {
    if (seconds >= unit[0] * 0.75) {
      chosen = unit;
    }
  }
  const n = Math.max(1, Math.round(seconds / chosen[0]));
  return `${n} ${chosen[1]}${n === 1 ? '' : 's'} ago`;
}

export interface VersionPresentation {
  label: string;
  description: string;
  tooltip: string;
  contextValue: 'version' | 'version.head';
  /** Set when the check on save has something to show (broken cases, still checking). */
  icon?: CheckIcon;
}

/** What a version row shows: `v3 · fix tone` with the check's score, author, time, branch and
 *  label badges. */
export function presentVersion(node: VersionNode, now: Date = new Date()): VersionPresentation {
  const v = node.version;
  const badges = node.labels.map((l) => `[${l}]`).join(' ');
  const message = v.message ? ` · ${v.message}` : '';
  const branch = v.branch === 'main' ? '' : `⎇ ${v.branch} · `;
  const check = checkBadge(v.check);
  const description = `${check ? `${check} · ` : ''}${badges ? badges + ' ' : ''}${branch}${v.author} · ${relativeTime(v.created_at, now)}`;
  const tooltip = [
    `${node.name} v${v.version}${node.isHead ? ' (head of main)' : ''}`,
    v.message ? `"${v.message}"` : undefined,
    `branch ${v.branch}, by ${v.author} via ${v.source}`,
    `at ${v.created_at}`,
    v.parent ? `parent v${v.parent}${v.merge_parent ? `, merged v${v.merge_parent}` : ''}` : 'first version',
    node.labels.length ? `labels: ${node.labels.join(', ')}` : undefined,
    `sha256 ${v.sha256.slice(0, 12)}`,
    ...checkTooltip(v.check),
  ].filter(Boolean).join('\n');
  return {
    label: `v${v.version}${message}`,
    description,
    tooltip,
    contextValue: node.isHead ? 'version.head' : 'version',
    icon: checkIcon(v.check),
  };
}

/** The previous version for "Diff with Previous": the parent, else the number before. */
export function previousVersion(version: VersionSummary): number | undefined {
  if (version.parent) {
    return version.parent;
  }
  return version.version > 1 ? version.version - 1 : undefined;
}
