// The pure logic, no VS Code: URIs, file names, the tree, status text, launching.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { explainStartFailure, explainToolError, resolveLaunch } from '../../src/launch';
import { promptNameForFile, sameTemplate, templateOfFile } from '../../src/names';
import { statusText } from '../../src/status';
import { buildTree, presentVersion, previousVersion, relativeTime, versionNodes, type FolderNode, type PromptNode } from '../../src/tree';
import type { PromptSummary, VersionSummary } from '../../src/types';
import { diffTitle, parseVersionPath, versionPath, versionUri } from '../../src/uris';

function summary(name: string, extra: Partial<PromptSummary> = {}): PromptSummary {
  return { id: 1, name, description: null, created_at: '2026-01-01T00:00:00Z', created_by: 'ana', archived: false, head: 3, versions: 3, labels: {}, branches: ['main'], ...extra };
}

function version(n: number, extra: Partial<VersionSummary> = {}): VersionSummary {
  return { version: n, branch: 'main', parent: n > 1 ? n - 1 : null, merge_parent: null, message: `change ${n}`, author: 'ana', source: 'mcp', sha256: 'abcdef0123456789', created_at: '2026-01-01T10:00:00Z', ...extra };
}

describe('version URIs', () => {
  it('encodes promstack:/support/refund/3', () => {
    assert.equal(versionUri('support/refund', 3), 'promstack:/support/refund/3');
    assert.equal(versionPath('greeting', 1), '/greeting/1');
  });

  it('round-trips names with dots, dashes and odd characters', () => {
    for (const name of ['support/refund', 'a.b/c-d_e', 'x/y/z/w', 'café/menu', 'has space/and#hash?']) {
      assert.deepEqual(parseVersionPath(versionPath(name, 12)), { name, version: 12 });
      assert.deepEqual(parseVersionPath(versionUri(name, 12)), { name, version: 12 });
    }
  });

  it('refuses what names no version', () => {
    assert.equal(parseVersionPath('/support/refund'), undefined);
    assert.equal(parseVersionPath('/3'), undefined);
    assert.equal(parseVersionPath('/support/refund/0'), undefined);
    assert.equal(parseVersionPath('/support/refund/03'), undefined);
    assert.equal(parseVersionPath('/bad/%E0%A4%A/2'), undefined);
    assert.throws(() => versionPath('support/refund', 0), /whole number/);
    assert.throws(() => versionPath('', 1), /empty/);
  });

  it('ignores a query or fragment', () => {
    assert.deepEqual(parseVersionPath('/support/refund/3?x=1'), { name: 'support/refund', version: 3 });
  });

  it('titles diffs', () => {
    assert.equal(diffTitle('support/refund', 2, 3), 'support/refund v2 ↔ v3');
  });
});

describe('prompt file names', () => {
  const root = '/ws';
  it('maps files under prompts/ the way the watcher does', () => {
    assert.equal(promptNameForFile('/ws/prompts/support/refund.prompt.md', root), 'support/refund');
    assert.equal(promptNameForFile('/ws/prompts/support/refund.txt', root), 'support/refund');
    assert.equal(promptNameForFile('/ws/prompts/a.prompt.yml', root), 'a');
    assert.equal(promptNameForFile('/ws/prompts/a.prompty', root), 'a');
    assert.equal(promptNameForFile('/ws/prompts/a.prompt', root), 'a');
    assert.equal(promptNameForFile('/ws/prompts/deep/er/x.jinja2', root), 'deep/er/x');
    assert.equal(promptNameForFile('prompts/rel.md', root), 'rel');
  });

  it('leaves out other files', () => {
    assert.equal(promptNameForFile('/ws/src/main.py', root), undefined);
    assert.equal(promptNameForFile('/ws/prompts/notes.py', root), undefined);
    assert.equal(promptNameForFile('/ws/prompts/.hidden.txt', root), undefined);
    assert.equal(promptNameForFile('/ws/prompts/.git/x.txt', root), undefined);
    assert.equal(promptNameForFile('/ws/promptsX/a.txt', root), undefined);
    assert.equal(promptNameForFile('/ws/prompts/.txt', root), undefined);
  });

  it('honours the promptsFolder setting, relative or absolute, and Windows separators', () => {
    assert.equal(promptNameForFile('/ws/llm/p/a.md', root, 'llm/p'), 'a');
    assert.equal(promptNameForFile('/ws/llm/p/a.md', root, '/ws/llm/p/'), 'a');
    assert.equal(promptNameForFile('C:\\ws\\prompts\\x\\y.txt', 'C:\\ws'), 'x/y');
  });

  it('finds the template in a file', () => {
    assert.equal(templateOfFile('a.prompt.md', '---\nmodel: gpt-4o\n---\nHello {{ name }}\n'), 'Hello {{ name }}\n');
    assert.equal(templateOfFile('a.prompt.md', 'No front matter'), 'No front matter');
    assert.equal(templateOfFile('a.txt', 'plain'), 'plain');
    assert.equal(templateOfFile('a.prompty', 'x'), undefined);
    assert.ok(sameTemplate('a\r\nb\n', 'a\nb'));
    assert.ok(!sameTemplate('a', 'b'));
  });
});

describe('the tree', () => {
  it('groups prompts into folders from "/" in their names, folders first, archived left out', () => {
    const tree = buildTree([
      summary('support/refund'), summary('support/billing/late'), summary('greeting'),
      summary('support/apology'), summary('old', { archived: true }), summary('alpha'),
    ]);
    assert.deepEqual(tree.map((n) => `${n.kind}:${n.kind === 'folder' ? n.path : (n as PromptNode).name}`), ['folder:support', 'prompt:alpha', 'prompt:greeting']);
    const support = tree[0] as FolderNode;
    assert.deepEqual(support.children.map((n) => (n as FolderNode).label), ['billing', 'apology', 'refund']);
    const billing = support.children[0] as FolderNode;
    assert.equal(billing.path, 'support/billing');
    assert.equal((billing.children[0] as PromptNode).label, 'late');
    assert.equal((billing.children[0] as PromptNode).name, 'support/billing/late');
  });

  it('an empty store is an empty tree', () => {
    assert.deepEqual(buildTree([]), []);
  });

  it('lists versions newest first with the labels that point at them', () => {
    const nodes = versionNodes('p', [version(1), version(3), version(2)], { production: 2, staging: 3, test: 2, latest: 3 }, 3);
    assert.deepEqual(nodes.map((n) => [n.version.version, n.labels, n.isHead]), [[3, ['staging'], true], [2, ['production', 'test'], false], [1, [], false]]);
  });

  it('presents a version row: number, message, badges, branch, author, time', () => {
    const [head] = versionNodes('p', [version(3, { branch: 'exp', message: 'shorter' })], { production: 3 }, 3);
    const shown = presentVersion(head, new Date('2026-01-01T12:00:00Z'));
    assert.equal(shown.label, 'v3 · shorter');
    assert.equal(shown.description, '[production] ⎇ exp · ana · 2 hours ago');
    assert.equal(shown.contextValue, 'version.head');
    assert.match(shown.tooltip, /labels: production/);
    assert.match(shown.tooltip, /parent v2/);
  });

  it('says times as people do', () => {
    const now = new Date('2026-01-10T00:00:00Z');
    assert.equal(relativeTime('2026-01-10T00:00:00Z', now), 'just now');
    assert.equal(relativeTime('2026-01-09T23:58:00Z', now), '2 minutes ago');
    assert.equal(relativeTime('2026-01-09T23:00:00Z', now), '1 hour ago');
    assert.equal(relativeTime('2026-01-07T00:00:00Z', now), '3 days ago');
    assert.equal(relativeTime('not a date', now), 'not a date');
  });

  it('finds the previous version through the parent', () => {
    assert.equal(previousVersion(version(5, { parent: 2 })), 2);
    assert.equal(previousVersion(version(1)), undefined);
    assert.equal(previousVersion(version(4, { parent: null })), 3);
  });
});

describe('status bar text', () => {
  it('shows name, head and unsaved/differs marks', () => {
    assert.equal(statusText({ name: 'p', head: 3, dirty: false, differs: false, untracked: false }).text, '$(versions) p v3');
    assert.equal(statusText({ name: 'p', head: 3, dirty: true, differs: true, untracked: false }).text, '$(versions) p v3 (unsaved, ≠ v3)');
    assert.match(statusText({ name: 'p', head: 3, dirty: false, differs: true, untracked: false }).tooltip, /differs from the stored head v3/);
    assert.equal(statusText({ name: 'p', head: null, dirty: false, differs: undefined, untracked: true }).text, '$(versions) p: not versioned');
  });
});

describe('launching the server', () => {
  const settings = { command: 'promstack', pythonPath: '', store: '' };
  it('a team server URL goes to promstack mcp as PROMSTACK_URL, with the token from secret storage', () => {
    const l = resolveLaunch({ ...settings, store: 'data/p.db', serverUrl: 'https://team.example.com/' }, '/ws', undefined, 'tok-123');
    assert.deepEqual(l.env, { PROMSTACK_URL: 'https://team.example.com', PROMSTACK_TOKEN: 'tok-123' });
    assert.deepEqual(resolveLaunch({ ...settings, serverUrl: 'http://h:8787' }, '/ws').env, { PROMSTACK_URL: 'http://h:8787' });
  });

  it('runs `promstack mcp` by default, in the workspace', () => {
    const l = resolveLaunch(settings, '/ws');
    assert.deepEqual([l.command, l.args, l.cwd, l.env], ['promstack', ['mcp'], '/ws', {}]);
  });

  it('uses a Python interpreter when set, and resolves ${workspaceFolder}, ~ and relative paths', () => {
    const l = resolveLaunch({ ...settings, pythonPath: '${workspaceFolder}/.venv/bin/python', store: 'data/p.db' }, '/ws', '/home/me');
    assert.deepEqual([l.command, l.args, l.env.PROMSTACK_DB], ['/ws/.venv/bin/python', ['-m', 'mcp_server'], '/ws/data/p.db']);
    assert.equal(resolveLaunch({ ...settings, command: '~/bin/promstack' }, '/ws', '/home/me').command, '/home/me/bin/promstack');
    assert.equal(resolveLaunch({ ...settings, command: './.venv/bin/promstack' }, '/ws').command, '/ws/.venv/bin/promstack');
  });

  it('explains a missing command with the setting that fixes it', () => {
    const f = explainStartFailure(resolveLaunch(settings, '/ws'), Object.assign(new Error('spawn promstack ENOENT'), { code: 'ENOENT' }), '');
    assert.match(f.message, /'promstack' was not found/);
    assert.match(f.fix, /pip install promstack/);
    assert.equal(f.setting, 'promstack.command');
  });

  it('explains an interpreter without PromStack', () => {
    const l = resolveLaunch({ ...settings, pythonPath: '/usr/bin/python3' }, '/ws');
    const f = explainStartFailure(l, new Error('Connection closed'), "Traceback...\nModuleNotFoundError: No module named 'mcp_server'");
    assert.match(f.message, /has no PromStack installed/);
    assert.match(f.fix, /\/usr\/bin\/python3 -m pip install promstack/);
    assert.equal(f.setting, 'promstack.pythonPath');
  });

  it('passes the last stderr line through otherwise', () => {
    const f = explainStartFailure(resolveLaunch(settings, '/ws'), new Error('Connection closed'), 'warming up\nsqlite3.DatabaseError: file is not a database');
    assert.match(f.message, /file is not a database/);
    assert.equal(explainToolError("no PromStack workspace here; run 'promstack init'"), "no PromStack workspace here; run 'promstack init' (run 'promstack init' in the workspace, or set promstack.store)");
  });
});
