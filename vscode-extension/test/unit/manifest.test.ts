// package.json and the code agree: every contributed command is registered and every registered
// one contributed, menus name real commands, and the MCP provider id matches its registration.
import assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, it } from 'node:test';
import { installStub, makeStub } from './vscodeStub';

const manifest = JSON.parse(fs.readFileSync(path.resolve(__dirname, '../../../package.json'), 'utf8'));
const { stub } = makeStub('/ws', { command: '/opt/venv/bin/promstack', store: 'data/p.db' });
const registered: string[] = [];
const mcpProviders: Array<{ id: string; provider: { provideMcpServerDefinitions: () => unknown[] } }> = [];
class McpStdioServerDefinition {
  cwd?: unknown;
  constructor(readonly label: string, readonly command: string, readonly args: string[], readonly env: Record<string, string>, readonly version: string) {}
}
Object.assign(stub, {
  McpStdioServerDefinition,
  commands: { registerCommand: (id: string) => { registered.push(id); return { dispose() {} }; }, executeCommand: async () => undefined },
  lm: { registerMcpServerDefinitionProvider: (id: string, provider: never) => { mcpProviders.push({ id, provider }); return { dispose() {} }; } },
});
installStub(stub);
const { registerCommands } = require('../../src/commands') as typeof import('../../src/commands');
const { registerMcpDefinitions, PROVIDER_ID } = require('../../src/mcpDefinition') as typeof import('../../src/mcpDefinition');

const context = { subscriptions: [] as unknown[], extension: { packageJSON: manifest } };

describe('the manifest', () => {
  registerCommands(context as never, {} as never);
  const contributed: string[] = manifest.contributes.commands.map((c: { command: string }) => c.command);

  it('contributes exactly the commands the extension registers', () => {
    assert.deepEqual([...registered].sort(), [...contributed].sort());
    assert.equal(context.subscriptions.length, registered.length, 'every registration is disposed with the extension');
  });

  it('has the issue\'s commands', () => {
    const titles = manifest.contributes.commands.map((c: { title: string }) => c.title);
    for (const title of ['Show History', 'Diff with Previous', 'Diff Any Two Versions', 'Open Version', 'Roll Back to This Version', 'Create Branch', 'Merge Branch', 'Set Label / Deploy', 'Run Prompt', 'Run Test Suite', 'Judge', 'Arena', 'Show Metrics', 'Compare Behaviour', 'Bisect: Find the Version That Broke a Case', 'Show Check on Save']) {
      assert.ok(titles.includes(title), title);
    }
  });

  it('menus name contributed commands only, in the palette, the view and the editor title', () => {
    for (const [where, items] of Object.entries(manifest.contributes.menus as Record<string, Array<{ command: string }>>)) {
      for (const item of items) {
        assert.ok(contributed.includes(item.command), `${where}: ${item.command}`);
      }
    }
    assert.ok(manifest.contributes.menus['view/item/context'].some((m: { command: string; when: string }) => m.command === 'promstack.rollback' && /viewItem/.test(m.when)));
    assert.ok(manifest.contributes.menus['editor/title'].some((m: { command: string }) => m.command === 'promstack.showHistory'));
    assert.ok(manifest.contributes.menus['view/item/context'].some((m: { command: string; when: string }) => m.command === 'promstack.compareBehaviour' && /viewItem =~ \/\^version\//.test(m.when)), 'Compare Behaviour on version rows');
  });

  it('declares the view, the settings and the MCP provider', () => {
    assert.equal(manifest.contributes.views.promstack[0].id, 'promstack.prompts');
    assert.deepEqual(Object.keys(manifest.contributes.configuration.properties).sort(), ['promstack.command', 'promstack.promptsFolder', 'promstack.pythonPath', 'promstack.registerMcpServer', 'promstack.serverUrl', 'promstack.store']);
    assert.deepEqual(manifest.contributes.mcpServerDefinitionProviders.map((p: { id: string }) => p.id), [PROVIDER_ID]);
  });
});

describe('the MCP server definition', () => {
  it('registers under the contributed id and starts `promstack mcp` with the workspace store', () => {
    const provider = registerMcpDefinitions(context as never);
    assert.ok(provider);
    assert.equal(mcpProviders[0].id, 'promstack.mcp');
    const [server] = mcpProviders[0].provider.provideMcpServerDefinitions() as McpStdioServerDefinition[];
    assert.deepEqual([server.label, server.command, server.args, server.env.PROMSTACK_DB, server.version], ['PromStack', '/opt/venv/bin/promstack', ['mcp'], '/ws/data/p.db', manifest.version]);
  });
});
