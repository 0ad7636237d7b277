// The status bar item over a stubbed editor: prompt name and head, unsaved edits, a saved file
// that differs from the stored head, an untracked file, and other files (hidden).
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { installStub, makeStub, Uri } from './vscodeStub';

const { stub } = makeStub('/ws');
const item = { text: '', tooltip: '', command: undefined as unknown, visible: false, name: '', show() { this.visible = true; }, hide() { this.visible = false; }, dispose() {} };
Object.assign(stub, { StatusBarAlignment: { Left: 1, Right: 2 } });
Object.assign(stub.window, { createStatusBarItem: () => item });
installStub(stub);
const { PromptStatusBar } = require('../../src/statusBar') as typeof import('../../src/statusBar');

let gets = 0;
const connection = { get: () => ({ getPrompt: async () => { gets++; return { template: 'Hello {{ name }}\n', kind: 'text', model_config: {} }; } }) };
const tree = { listing: async () => [{ id: 1, name: 'greet', archived: false, head: 2, labels: {}, branches: ['main'] }] };

function open(path: string, text: string, isDirty = false): void {
  const document = { uri: Uri.file(path), fileName: path, isDirty, getText: () => text };
  stub.window.activeTextEditor = { document };
}

const bar = new PromptStatusBar(connection as never, tree as never);

async function update(): Promise<void> {
  await (bar as unknown as { update: () => Promise<void> }).update();
}

describe('PromptStatusBar', () => {
  it('shows the prompt and its head when the file matches the store', async () => {
    open('/ws/prompts/greet.txt', 'Hello {{ name }}\n');
    await update();
    assert.equal(item.visible, true);
    assert.equal(item.text, '$(versions) greet v2');
    assert.deepEqual((item.command as { command: string; arguments: unknown[] }).command, 'promstack.showHistory');
  });

  it('marks unsaved edits and a template that differs from the head', async () => {
    open('/ws/prompts/greet.txt', 'Hi {{ name }}\n', true);
    await update();
    assert.equal(item.text, '$(versions) greet v2 (unsaved, ≠ v2)');
    open('/ws/prompts/greet.prompt.md', '---\nmodel: m\n---\nHello {{ name }}\n');
    await update();
    assert.equal(item.text, '$(versions) greet v2', 'front matter is not the template');
    assert.equal(gets, 1, 'the head template is fetched once per version');
  });

  it('says when a prompt file is not in the store, and hides for other files', async () => {
    open('/ws/prompts/new/idea.md', 'x');
    await update();
    assert.equal(item.text, '$(versions) new/idea: not versioned');
    assert.equal(item.command, undefined);
    open('/ws/src/app.py', 'print()');
    await update();
    assert.equal(item.visible, false);
  });
});
