// The providers under a stubbed `vscode` (through src/vs.ts): the tree asks the right tools and
// builds the right items; version documents are fetched once; targets read files and nodes.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { installStub, makeStub, Uri } from './vscodeStub';

const { stub, recorded, pickAnswers } = makeStub('/ws');
installStub(stub);

// Loaded after the stub is in place.
import type { PromptTreeProvider as TreeType } from '../../src/promptTree';
const { PromptTreeProvider } = require('../../src/promptTree') as typeof import('../../src/promptTree');
const { VersionDocumentProvider } = require('../../src/versionDocuments') as typeof import('../../src/versionDocuments');
const { Targets } = require('../../src/targets') as typeof import('../../src/targets');
const { ToolError } = require('../../src/client') as typeof import('../../src/client');

const calls: string[] = [];
const fakeClient = {
  listPrompts: async () => {
    calls.push('list_prompts');
    return [
      { id: 1, name: 'support/refund', description: null, created_at: '', created_by: 'a', archived: false, head: 2, versions: 2, labels: { production: 1, latest: 2 }, branches: ['main'] },
      { id: 2, name: 'greeting', description: null, created_at: '', created_by: 'a', archived: false, head: 1, versions: 1, labels: {}, branches: ['main'] },
    ];
  },
  getHistory: async (name: string) => {
    calls.push(`get_history ${name}`);
    return { prompt_id: 1, name, versions: [
      { version: 2, branch: 'main', parent: 1, merge_parent: null, message: 'polite', author: 'a', source: 'mcp', sha256: 'ff', created_at: '2026-01-01T00:00:00Z' },
      { version: 1, branch: 'main', parent: null, merge_parent: null, message: null, author: 'a', source: 'mcp', sha256: 'ee', created_at: '2026-01-01T00:00:00Z' },
    ] };
  },
  getPrompt: async (name: string, sel: { version?: number }) => {
    calls.push(`get_prompt ${name} ${sel.version}`);
    if (name === 'missing') {
      throw new ToolError('get_prompt', "no prompt named 'missing'");
    }
    return { kind: 'text', template: `text of v${sel.version}`, model_config: {} };
  },
};
const connection = {
  get: () => fakeClient,
  run: async <T>(fn: (c: typeof fakeClient) => Promise<T>) => {
    try {
      return await fn(fakeClient);
    } catch (e) {
      recorded.errors.push((e as Error).message);
      return undefined;
    }
  },
  report: (e: unknown) => recorded.errors.push((e as Error).message),
};

describe('PromptTreeProvider', () => {
  const tree: TreeType = new PromptTreeProvider(connection as never);

  it('builds folders, prompts and versions from list_prompts and get_history', async () => {
    const root = await tree.getChildren();
    assert.deepEqual(root.map((n) => n.kind), ['folder', 'prompt']);
    const folderItem = tree.getTreeItem(root[0]);
    assert.equal(folderItem.label, 'support');
    const [refund] = await tree.getChildren(root[0]);
    const promptItem = tree.getTreeItem(refund);
    assert.equal(promptItem.contextValue, 'prompt');
    assert.equal(promptItem.description, 'v2 · production=v1');
    const versions = await tree.getChildren(refund);
    const items = versions.map((v) => tree.getTreeItem(v));
    assert.deepEqual(items.map((i) => [i.label, i.contextValue]), [['v2 · polite', 'version.head'], ['v1', 'version']]);
    assert.match(String(items[1].description), /^\[production\]/);
    assert.equal(items[0].command?.command, 'promstack.openVersion');
    assert.equal(String(items[0].resourceUri), 'promstack:/support/refund/2');
    assert.equal(tree.getParent(versions[0]), refund);
    assert.equal(tree.getParent(refund), root[0]);
    assert.deepEqual(calls.filter((c) => c === 'list_prompts'), ['list_prompts'], 'one listing per refresh');
  });

  it('refresh() fires its own event and lists again', async () => {
    let fired = 0;
    tree.onDidChangeTreeData(() => fired++);
    tree.refresh();
    await tree.getChildren();
    assert.equal(fired, 1);
    assert.equal(calls.filter((c) => c === 'list_prompts').length, 2);
  });

  it('finds a prompt node for reveal()', async () => {
    const node = await tree.promptNode('support/refund');
    assert.equal(node?.name, 'support/refund');
    assert.equal(await tree.promptNode('nope'), undefined);
  });
});

describe('VersionDocumentProvider', () => {
  it('fetches each version once, by the name and number in its URI', async () => {
    const docs = new VersionDocumentProvider(connection as never);
    const uri = Uri.parse('promstack:/support/refund/2');
    assert.equal(await docs.provideTextDocumentContent(uri as never), 'text of v2\n');
    assert.equal(await docs.provideTextDocumentContent(uri as never), 'text of v2\n');
    assert.equal(calls.filter((c) => c === 'get_prompt support/refund 2').length, 1);
    assert.match(await docs.provideTextDocumentContent(Uri.parse('promstack:/nothing') as never), /Not a PromStack version/);
    assert.match(await docs.provideTextDocumentContent(Uri.parse('promstack:/missing/1') as never), /Could not load missing v1/);
    assert.ok(recorded.errors.includes("no prompt named 'missing'"));
  });
});

describe('Targets', () => {
  const tree = new PromptTreeProvider(connection as never);
  const targets = new Targets(connection as never, tree);

  it('reads the prompt from a tree node, a prompt file or a version document', () => {
    assert.equal(targets.nameFromArg({ kind: 'prompt', name: 'greeting' }), 'greeting');
    assert.equal(targets.nameFromArg(Uri.file('/ws/prompts/support/refund.prompt.md')), 'support/refund');
    assert.equal(targets.nameFromArg(Uri.parse('promstack:/support/refund/2')), 'support/refund');
    assert.equal(targets.nameFromArg(Uri.file('/ws/README.md')), undefined);
    assert.deepEqual(targets.versionFromArg(Uri.parse('promstack:/support/refund/2')), { name: 'support/refund', version: 2 });
  });

  it('asks with a quick pick when nothing names a prompt', async () => {
    pickAnswers.push({ label: 'greeting' });
    assert.equal(await targets.prompt(undefined), 'greeting');
    const asked = recorded.quickPicks.at(-1)!;
    assert.deepEqual((asked.items as Array<{ label: string }>).map((i) => i.label), ['support/refund', 'greeting']);
  });

  it('offers versions newest first', async () => {
    pickAnswers.push(undefined);
    await targets.pickVersion('support/refund', 'which?');
    const asked = recorded.quickPicks.at(-1)!;
    assert.deepEqual((asked.items as Array<{ label: string }>).map((i) => i.label), ['v2 · polite', 'v1']);
  });
});
