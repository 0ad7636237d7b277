// Compare Behaviour and Bisect under a stubbed `vscode`: which versions, suite and case they send
// to the server, and what they show with the answer.
import assert from 'node:assert/strict';
import { beforeEach, describe, it } from 'node:test';
import { installStub, makeStub } from './vscodeStub';
import type { BehaviourDiff, BisectResult, VersionCheck, VersionSummary } from '../../src/types';

const { stub, recorded, pickAnswers } = makeStub('/ws');
const handlers = new Map<string, (...args: unknown[]) => unknown>();
const executed: unknown[][] = [];
const warningAnswers: Array<string | undefined> = [];
const inputAnswers: Array<string | undefined> = [];
Object.assign(stub, {
  ProgressLocation: { Notification: 15 },
  commands: {
    registerCommand: (id: string, fn: (...args: unknown[]) => unknown) => { handlers.set(id, fn); return { dispose() {} }; },
    executeCommand: async (...args: unknown[]) => { executed.push(args); return undefined; },
  },
});
Object.assign(stub.window, {
  withProgress: (_options: unknown, fn: (progress: unknown, token: unknown) => unknown) => fn({ report() {} }, { onCancellationRequested() {} }),
  showWarningMessage: async (m: string) => { recorded.warnings.push(m); return warningAnswers.shift(); },
  showInputBox: async () => inputAnswers.shift(),
});
installStub(stub);

const { registerCommands } = require('../../src/commands') as typeof import('../../src/commands');
const { PromptTreeProvider } = require('../../src/promptTree') as typeof import('../../src/promptTree');
const { Targets } = require('../../src/targets') as typeof import('../../src/targets');

function check(suite: string, broke: string[] = []): VersionCheck {
  return { status: 'checked', suite, score: 50, parent_version: null, parent_score: 100, delta: -50, broke: broke.map((c) => ({ case: c, input: `input ${c}`, parent_score: 100, score: 0, reason: null })), fixed: [], sample: 2, cost_usd: 0, reason: null, text: '50 (-50)', checked_at: null };
}

function version(n: number, c: VersionCheck | null): VersionSummary {
  return { version: n, branch: 'main', parent: n - 1 || null, merge_parent: null, message: null, author: 'a', source: 'mcp', sha256: 'ff', created_at: '2026-01-01T00:00:00Z', check: c };
}

let history: VersionSummary[] = [];
let behaviour: BehaviourDiff | null = null;
const calls: Array<[string, ...unknown[]]> = [];
const client = {
  listPrompts: async () => [{ id: 1, name: 'support/refund', description: null, created_at: '', created_by: 'a', archived: false, head: 4, versions: 4, labels: {}, branches: ['main'] }],
  getHistory: async (name: string) => ({ prompt_id: 1, name, versions: history }),
  diffVersions: async (...args: unknown[]) => {
    calls.push(['diff_versions', ...args.slice(0, 4)]);
    return { behaviour };
  },
  bisectPrompt: async (name: string, args: Record<string, unknown>): Promise<BisectResult> => {
    calls.push(['bisect_prompt', name, args]);
    return { culprit: 4, parent: 3, tested: [2, 4], model_calls: 4, diff: '-a\n+b', reason: 'no shoes', text: 'v4 broke case refund-3', found: true };
  },
};
const connection = { get: () => client, run: async <T>(fn: (c: typeof client) => Promise<T>) => fn(client), storeChanged() {} };
const shown: unknown[] = [];
const panels = {
  showBehaviour: (name: string, diff: BehaviourDiff) => shown.push([name, diff.text]),
  showCheck: (name: string, v: number, c: VersionCheck) => shown.push([name, v, c.text]),
};
const tree = new PromptTreeProvider(connection as never);
registerCommands({ subscriptions: [] } as never, { connection, tree, treeView: {}, targets: new Targets(connection as never, tree), panels, output: {} } as never);

const node = (n: number) => ({ kind: 'version', name: 'support/refund', version: version(n, null), labels: [], isHead: n === 4 });
const diff: BehaviourDiff = { suite: 'regression', from_version: 3, to_version: 4, a_better: 1, b_better: 0, same: 1, verdict: 'A better', text: 'v3 better on 1 of 2 cases', cases: [], cost_usd: 0 };

beforeEach(() => {
  calls.length = 0;
  shown.length = 0;
  executed.length = 0;
  recorded.quickPicks.length = 0;
  behaviour = diff;
  history = [version(4, check('regression', ['refund-3'])), version(3, check('regression')), version(2, null)];
});

describe('Compare Behaviour', () => {
  const compare = (...args: unknown[]) => handlers.get('promstack.compareBehaviour')!(...args) as Promise<void>;

  it('two selected version rows, older first, on the suite their checks used', async () => {
    await compare(node(4), [node(4), node(3)]);
    assert.deepEqual(calls, [['diff_versions', 'support/refund', 3, 4, { behaviour: true, suite: 'regression' }]]);
    assert.deepEqual(shown, [['support/refund', 'v3 better on 1 of 2 cases']]);
    assert.equal(recorded.quickPicks.length, 0, 'nothing to ask');
    assert.equal(recorded.infos.at(-1), 'PromStack: support/refund v3 ↔ v4: v3 better on 1 of 2 cases');
  });

  it('from the notification: the versions and the suite it names', async () => {
    await compare({ kind: 'compare', name: 'support/refund', from: 3, to: 4, suite: 'smoke' });
    assert.deepEqual(calls, [['diff_versions', 'support/refund', 3, 4, { behaviour: true, suite: 'smoke' }]]);
  });

  it('one row: asks for the other version, and for the suite when the checks used several', async () => {
    history = [version(4, check('smoke')), version(3, check('regression')), version(2, null)];
    pickAnswers.push({ label: 'v2', version: version(2, null) }, 'smoke');
    await compare(node(4));
    assert.deepEqual((recorded.quickPicks[0].items as Array<{ label: string }>).map((i) => i.label), ['v3', 'v2'], 'the other versions');
    assert.deepEqual(recorded.quickPicks[1].items, ['smoke', 'regression', 'Another suite…']);
    assert.deepEqual(calls, [['diff_versions', 'support/refund', 2, 4, { behaviour: true, suite: 'smoke' }]]);
  });

  it('an older server that diffs text only is told to upgrade', async () => {
    behaviour = null;
    await compare(node(4), [node(3), node(4)]);
    assert.match(recorded.warnings.at(-1)!, /diffs text only; upgrade PromStack/);
    assert.deepEqual(shown, []);
  });
});

describe('Bisect', () => {
  const bisect = (arg?: unknown) => handlers.get('promstack.bisect')!(arg) as Promise<void>;

  it('offers the cases saves broke, sends the case, the suite and the known-bad version, and opens the diff', async () => {
    pickAnswers.push({ label: 'refund-3' });
    warningAnswers.push('Open Diff');
    await bisect(node(4));
    assert.deepEqual((recorded.quickPicks[0].items as Array<{ label: string; description: string }>).map((i) => [i.label, i.description]), [['refund-3', 'broke in v4'], ['Another case…', 'its key in the suite']]);
    assert.deepEqual(calls, [['bisect_prompt', 'support/refund', { case: 'refund-3', suite: 'regression', bad: 4 }]]);
    assert.equal(recorded.warnings.at(-1), 'PromStack: v4 broke case refund-3');
    assert.equal(executed[0][0], 'vscode.diff');
    assert.deepEqual(executed[0].slice(1).map(String), ['promstack:/support/refund/3', 'promstack:/support/refund/4', 'support/refund v3 ↔ v4']);
  });

  it('takes another case by its key', async () => {
    pickAnswers.push({ label: 'Another case…' });
    inputAnswers.push(' 7 ');
    warningAnswers.push(undefined);
    await bisect({ kind: 'prompt', name: 'support/refund' });
    assert.deepEqual(calls, [['bisect_prompt', 'support/refund', { case: '7', suite: 'regression', bad: undefined }]]);
    assert.equal(executed.length, 0);
  });
});

describe('Show Check on Save', () => {
  const showCheck = (arg?: unknown) => handlers.get('promstack.showCheck')!(arg) as Promise<void>;

  it('opens the check of a version row, fetched when the row has none', async () => {
    await showCheck(node(4));
    assert.deepEqual(shown, [['support/refund', 4, '50 (-50)']]);
  });

  it('says when a version has no check', async () => {
    await showCheck(node(2));
    assert.deepEqual(shown, []);
    assert.match(recorded.infos.at(-1)!, /v2 has no check on save/);
  });
});
