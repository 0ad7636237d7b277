// CheckWatch under a stubbed `vscode`: a save moves a prompt's head, its check is seen pending,
// looked at again until it finishes, the tree refreshes, and the broken cases are announced once,
// with the actions that show them.
import assert from 'node:assert/strict';
import { describe, it, mock } from 'node:test';
import { installStub, makeStub } from './vscodeStub';
import type { PromptSummary, VersionCheck, VersionSummary } from '../../src/types';

const { stub, recorded } = makeStub('/ws');
const answers: Array<string | undefined> = [];
stub.window.showWarningMessage = async (m: string) => {
  recorded.warnings.push(m);
  return answers.shift() as never;
};
installStub(stub);

const { PromptTreeProvider } = require('../../src/promptTree') as typeof import('../../src/promptTree');
const { CheckWatch } = require('../../src/checkWatch') as typeof import('../../src/checkWatch');

function summary(head: number): PromptSummary {
  return { id: 1, name: 'support/refund', description: null, created_at: '', created_by: 'a', archived: false, head, versions: head, labels: {}, branches: ['main'] };
}

function version(n: number, check: VersionCheck | null): VersionSummary {
  return { version: n, branch: 'main', parent: n - 1, merge_parent: null, message: null, author: 'a', source: 'watch', sha256: 'ff', created_at: new Date().toISOString(), check };
}

const base: VersionCheck = { status: 'pending', suite: 'regression', score: null, parent_version: 2, parent_score: 100, delta: null, broke: [], fixed: [], sample: 2, cost_usd: 0, reason: null, text: 'checking…', checked_at: null };
const broke: VersionCheck = { ...base, status: 'checked', score: 50, delta: -50, text: '50 (-50: 1 broke)', broke: [{ case: '1', input: 'shoes?', parent_score: 100, score: 0, reason: 'no shoes' }], checked_at: new Date().toISOString() };

let listing = [summary(2)];
let history: VersionSummary[] = [version(2, null)];
const asked: string[] = [];
const client = {
  listPrompts: async () => listing,
  getHistory: async (name: string, opts: { limit?: number } = {}) => {
    asked.push(`get_history ${name} ${opts.limit ?? ''}`);
    return { prompt_id: 1, name, versions: history };
  },
};
const connection = { get: () => client, run: async <T>(fn: (c: typeof client) => Promise<T>) => fn(client) };

describe('CheckWatch', () => {
  it('follows a save from checking… to its broken cases, and says it once', async () => {
    mock.timers.enable({ apis: ['setTimeout'] });
    const flush = () => new Promise((r) => setImmediate(r));
    const tree = new PromptTreeProvider(connection as never);
    let refreshed = 0;
    tree.onDidChangeTreeData(() => refreshed++);
    const shown: string[] = [];
    const watch = new CheckWatch(connection as never, tree, {
      showCases: (name, v, check) => shown.push(`cases ${name} v${v} ${check.broke.length}`),
      compare: (name, from, to, suite) => shown.push(`compare ${name} v${from} v${to} ${suite}`),
    });
    await watch.storeChanged();
    assert.deepEqual(asked, [], 'the first listing only records the heads');

    // A save: the head moves, the new version waits for its check.
    listing = [summary(3)];
    history = [version(3, base), version(2, null)];
    tree.refresh();
    await watch.storeChanged();
    assert.deepEqual(asked, ['get_history support/refund 20']);
    assert.equal(recorded.warnings.length, 0);

    // Still checking at the first look again; finished at the second.
    mock.timers.tick(1000);
    await flush();
    assert.equal(asked.length, 2);
    history = [version(3, broke), version(2, null)];
    answers.push('Show Cases');
    const before = refreshed;
    mock.timers.tick(2000);
    await flush();
    await flush();
    assert.equal(asked.length, 3);
    assert.deepEqual(recorded.warnings, ['PromStack: v3 of support/refund broke 1 case (50, -50)']);
    assert.deepEqual(shown, ['cases support/refund v3 1']);
    assert.ok(refreshed > before, 'the tree refreshes when the check finishes');

    // Nothing pending: no more looks; the tree loading the same history says nothing again.
    mock.timers.tick(60_000);
    await flush();
    assert.equal(asked.length, 3);
    const [folder] = await tree.getChildren();
    const [prompt] = await tree.getChildren(folder);
    const [row] = await tree.getChildren(prompt);
    const item = tree.getTreeItem(row);
    assert.match(String(item.description), /^50 \(-50: 1 broke\) · /);
    assert.deepEqual([(item.iconPath as { id: string }).id, (item.iconPath as { color?: { id: string } }).color?.id], ['warning', 'list.warningForeground']);
    assert.match(String(item.tooltip), /broke \(1\):\n {2}1 "shoes\?" 100 → 0: no shoes/);
    assert.equal(recorded.warnings.length, 1, 'never twice for the same version');
    watch.dispose();
    mock.timers.reset();
  });
});
