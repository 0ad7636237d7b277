// End-to-end in real VS Code: code-server (Code-OSS from the npm registry, on Node 24) with the
// packaged extension installed, driven by playwright-core in Debian's chromium. It opens a
// workspace whose store has two versions of support/refund, runs Show History and Diff with
// Previous from the command palette, checks the diff editor shows both versions, rolls back and
// sees the new version in the tree, then saves a version that breaks a case (from another
// process, as the watcher would) and waits for its check on save: the badge on the version,
// the notification, its cases, and Compare Behaviour's side-by-side webview. It saves
// screenshots and stops every process it starts.
//
//   node out/test/e2e/run.js --vsix X.vsix --node24 /path/to/node --code-server /path/to/bin/code-server
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { PromStackClient } from '../../src/client';
import { resolveLaunch } from '../../src/launch';
import type { VersionCheck } from '../../src/types';
import { promstackCommand, startFakeLlm } from '../contract/server';

const REPO = path.resolve(__dirname, '../../../..');
// `make screenshots` refreshes the committed ones (PROMSTACK_SCREENSHOTS=docs/screenshots); a plain
// test run writes them under build/ so that `make test` leaves the work tree as it found it.
const SHOTS = process.env.PROMSTACK_SCREENSHOTS || path.join(REPO, 'build', 'screenshots');
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function arg(name: string): string {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0 || !process.argv[i + 1]) {
    throw new Error(`missing --${name}`);
  }
  return process.argv[i + 1];
}

function log(message: string): void {
  process.stderr.write(`[e2e ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const port = (server.address() as net.AddressInfo).port;
      server.close(() => resolve(port));
    });
  });
}

async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await fn();
      if (value) {
        return value;
      }
    } catch (error) {
      lastError = error;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
}

/** Processes this test started, each the leader of its own process group. */
const started: ChildProcess[] = [];

function startGroup(command: string, args: string[], options: { env: NodeJS.ProcessEnv; logFile: string }): ChildProcess {
  const out = fs.openSync(options.logFile, 'a');
  const child = spawn(command, args, { env: options.env, detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  started.push(child);
  return child;
}

function alive(pid: number): boolean {
  try {
    process.kill(-pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** SIGTERM each group (code-server, its extension host, and the promstack server under it), then SIGKILL what is left. */
async function stopAll(): Promise<void> {
  for (const child of started) {
    if (child.pid && alive(child.pid)) {
      process.kill(-child.pid, 'SIGTERM');
    }
  }
  const deadline = Date.now() + 5000;
  while (Date.now() < deadline && started.some((c) => c.pid && alive(c.pid))) {
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const child of started) {
    if (child.pid && alive(child.pid)) {
      log(`process group ${child.pid} ignored SIGTERM; killing it`);
      process.kill(-child.pid, 'SIGKILL');
    }
  }
}

async function makeWorkspace(root: string): Promise<string> {
  const ws = path.join(root, 'workspace');
  fs.mkdirSync(path.join(ws, 'prompts', 'support'), { recursive: true });
  fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
  const env: NodeJS.ProcessEnv = { ...process.env, PROMSTACK_USER: 'ana' };
  delete env.PROMSTACK_DB;
  execFileSync(promstackCommand(), ['init'], { cwd: ws, env, stdio: 'ignore' });
  const launch = resolveLaunch({ command: promstackCommand(), pythonPath: '', store: '' }, ws);
  launch.env = { PROMSTACK_USER: 'ana' };
  const client = new PromStackClient(launch, { env });
  try {
    await client.createPrompt('support/refund', 'Explain our refund policy for {{ product }}.\nKeep it short.', { message: 'first draft', model_config: { model: 'gpt-4o-mini' } });
    await client.updatePrompt('support/refund', { template: 'Politely explain our 30-day refund policy for {{ product }}.\nKeep it short.', message: 'polite, 30 days' });
    await client.createPrompt('greeting', 'Say hello to {{ name }}.', { message: 'hello' });
    await client.setLabel('support/refund', 'production', 1, 'launch', true);  // no suite yet: forced, with a reason
    // The fake model echoes the request, so the first case passes and the second fails.
    await client.importTestCases({ suite: 'regression', prompt: 'support/refund', cases: 'input,product,assert:contains\nshoes?,shoes,shoes\nhats?,hats,store credit only\n' });
  } finally {
    await client.close();
  }
  fs.writeFileSync(path.join(ws, 'prompts', 'support', 'refund.txt'), 'Politely explain our 30-day refund policy for {{ product }}.\nKeep it short.\n');
  fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'promstack.command': promstackCommand() }, null, 2));
  return ws;
}

function userSettings(userDataDir: string): void {
  const dir = path.join(userDataDir, 'User');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'settings.json'), JSON.stringify({
    'workbench.startupEditor': 'none',
    'workbench.tips.enabled': false,
    'workbench.enableExperiments': false,
    'security.workspace.trust.enabled': false,
    'telemetry.telemetryLevel': 'off',
    'update.mode': 'none',
    'extensions.autoCheckUpdates': false,
    'extensions.autoUpdate': false,
    'chat.disableAIFeatures': true,
    'workbench.colorTheme': 'Default Dark Modern',
    'window.commandCenter': false,
    'workbench.secondarySideBar.defaultVisibility': 'hidden',
    'diffEditor.renderSideBySide': true,
    'diffEditor.useInlineViewWhenSpaceIsLimited': false,
  }, null, 2));
}

async function palette(page: Page, command: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${command}`);
  const row = page.locator('.quick-input-list .monaco-list-row', { hasText: command }).first();
  await row.waitFor({ state: 'visible', timeout: 15_000 });
  await page.keyboard.press('Enter');
}

/** Picks `label` in the open quick pick (a prompt or a version). */
async function pick(page: Page, label: string, placeholder?: RegExp): Promise<void> {
  const widget = page.locator('.quick-input-widget');
  if (placeholder) {
    await waitFor(`quick pick "${placeholder}"`, async () => placeholder.test((await widget.locator('input').getAttribute('placeholder')) ?? ''), 20_000);
  }
  await widget.locator('input').fill(label);
  const row = widget.locator('.quick-input-list .monaco-list-row', { hasText: label }).first();
  await row.waitFor({ state: 'visible', timeout: 20_000 });
  await row.click();
}

async function quickPickLabels(page: Page): Promise<string[]> {
  return page.locator('.quick-input-widget .quick-input-list .monaco-list-row .label-name').allInnerTexts();
}

async function shot(page: Page, name: string): Promise<void> {
  fs.mkdirSync(SHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SHOTS, name) });
  log(`screenshot ${path.join(SHOTS, name)}`);
}

async function editorText(page: Page, selector: string): Promise<string> {
  return (await page.locator(selector).first().innerText()).replace(/\u00a0/g, ' ');
}

async function main(): Promise<void> {
  const vsix = path.resolve(arg('vsix'));
  const node24 = path.resolve(arg('node24'));
  const codeServer = path.resolve(arg('code-server'));
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'promstack-e2e-'));
  const userDataDir = path.join(root, 'user-data');
  const extensionsDir = path.join(root, 'extensions');
  const codeLog = path.join(root, 'code-server.log');
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    PATH: `${path.dirname(node24)}:${process.env.PATH}`,
    HOME: root, // code-server writes its config under $HOME/.config; keep it in the temp dir
    XDG_CONFIG_HOME: path.join(root, 'config'),
    XDG_DATA_HOME: path.join(root, 'data'),
    PROMSTACK_USER: 'ana',
    // No marketplace: code-server would query open-vsx.org at start; point it at a closed
    // loopback port so nothing leaves the machine.
    EXTENSIONS_GALLERY: JSON.stringify({ serviceUrl: 'http://127.0.0.1:9/gallery', itemUrl: 'http://127.0.0.1:9/items', resourceUrlTemplate: 'http://127.0.0.1:9/resource' }),
  };
  delete env.PROMSTACK_DB;
  delete env.PASSWORD;
  let context: BrowserContext | undefined;
  let fake: { url: string; stop: () => void } | undefined;
  let ok = false;
  const t0 = Date.now();
  try {
    // Run Test Suite calls a model: tests/fake_llm.py on 127.0.0.1, reached by the server that
    // the extension starts (it inherits code-server's environment).
    fake = await startFakeLlm();
    Object.assign(env, { OPENAI_API_BASE: fake.url, OPENAI_BASE_URL: fake.url, OPENAI_API_KEY: 'sk-e2e' });
    const ws = await makeWorkspace(root);
    userSettings(userDataDir);
    log(`workspace ${ws}; installing ${path.basename(vsix)}`);
    execFileSync(codeServer, ['--user-data-dir', userDataDir, '--extensions-dir', extensionsDir, '--install-extension', vsix], { env, stdio: 'pipe', timeout: 120_000 });
    const port = await freePort();
    startGroup(codeServer, [
      '--bind-addr', `127.0.0.1:${port}`, '--auth', 'none', '--disable-telemetry', '--disable-update-check',
      '--disable-workspace-trust', '--disable-getting-started-override', '--user-data-dir', userDataDir,
      '--extensions-dir', extensionsDir, '--ignore-last-opened', ws,
    ], { env, logFile: codeLog });
    const base = `http://127.0.0.1:${port}`;
    await waitFor('code-server to answer', async () => (await fetch(`${base}/healthz`)).ok, 90_000);
    log(`code-server up on ${base} after ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    await (require('./teamServer') as typeof import('./teamServer')).teamServerScenario(base); // its own browser, team server and workspace

    context = await chromium.launchPersistentContext(path.join(root, 'chromium-profile'), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1600, height: 900 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${base}/?folder=${encodeURIComponent(ws)}`);
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 90_000 });
    // The extension activates on the store in the workspace; its view container appears.
    const activity = page.locator('.activitybar [aria-label^="PromStack"]').first();
    await activity.waitFor({ state: 'visible', timeout: 60_000 });
    await activity.click();
    await page.locator('.monaco-list-row', { hasText: 'support' }).first().waitFor({ timeout: 60_000 });
    log('PromStack view shows the store');
    // Widen the side bar so the version rows read in full in the screenshots (cosmetic only).
    const sidebar = await page.locator('.part.sidebar').first().boundingBox();
    if (sidebar) {
      const x = sidebar.x + sidebar.width + 1;
      const y = sidebar.y + sidebar.height / 2;
      await page.mouse.move(x, y);
      await page.mouse.down();
      await page.mouse.move(x + 180, y, { steps: 8 });
      await page.mouse.up();
    }

    // Show History from the command palette.
    await palette(page, 'PromStack: Show History');
    await pick(page, 'support/refund', /Show the history/);
    await waitFor('the history quick pick', async () => (await quickPickLabels(page)).some((l) => l.startsWith('v2')), 30_000);
    const history = await quickPickLabels(page);
    log(`history: ${history.join(' | ')}`);
    assertTrue(history[0].startsWith('v2 · polite, 30 days') && history[1].startsWith('v1 · first draft'), `history lists v2 then v1: ${history.join(' | ')}`);
    await shot(page, 'vscode-history.png');
    await page.keyboard.press('Escape');

    // Diff with Previous: v1 (left) against v2 (right) in the built-in diff editor.
    await palette(page, 'PromStack: Diff with Previous');
    await pick(page, 'support/refund', /Which prompt/);
    const diff = page.locator('.monaco-diff-editor').first();
    await diff.waitFor({ state: 'visible', timeout: 30_000 });
    const original = await waitFor('the left side of the diff', async () => {
      const text = await editorText(page, '.monaco-diff-editor .editor.original .view-lines');
      return text.includes('Explain our refund policy') ? text : undefined;
    }, 30_000);
    const modified = await waitFor('the right side of the diff', async () => {
      const text = await editorText(page, '.monaco-diff-editor .editor.modified .view-lines');
      return text.includes('30-day') ? text : undefined;
    }, 30_000);
    assertTrue(!original.includes('30-day') && modified.includes('Politely'), 'left is v1, right is v2');
    const tab = await page.locator('.tabs-container .tab.active').first().innerText();
    assertTrue(tab.includes('support/refund v1 ↔ v2'), `the diff tab is titled "support/refund v1 ↔ v2" (got "${tab}")`);
    log('diff editor shows v1 and v2');
    await shot(page, 'vscode-diff.png');

    // Roll back to v1 from the tree's context menu; the new version v3 appears in the tree.
    const v1Row = page.locator('.monaco-list-row', { hasText: 'v1 · first draft' }).first();
    const menuItem = page.locator('.monaco-menu .action-item', { hasText: 'Roll Back to This Version' }).first();
    const confirm = page.locator('.monaco-dialog-box .monaco-button', { hasText: 'Roll Back' }).first();
    // A context menu sometimes drops a click that lands while it is still opening: try again.
    await waitFor('the roll-back confirmation', async () => {
      if (!(await menuItem.isVisible())) {
        await v1Row.click({ button: 'right' });
        await menuItem.waitFor({ state: 'visible', timeout: 10_000 });
      }
      await menuItem.hover();
      await menuItem.click();
      return confirm.waitFor({ state: 'visible', timeout: 5000 }).then(() => true, () => false);
    }, 45_000, 0);
    await shot(page, 'vscode-rollback-confirm.png');
    await confirm.click();
    const newRow = page.locator('.monaco-list-row', { hasText: 'v3 · Rolled back to v1' }).first();
    await newRow.waitFor({ state: 'visible', timeout: 30_000 });
    log('the tree shows v3, the rollback');
    await page.locator('.notifications-toasts .notification-toast', { hasText: 'new head v3' }).first().waitFor({ timeout: 15_000 });
    await shot(page, 'vscode-rollback.png');

    // The status bar for the prompt file: name and head version.
    await page.keyboard.press('Escape');
    await page.keyboard.press('Control+P');
    await page.locator('.quick-input-widget input').fill('refund.txt');
    await page.locator('.quick-input-list .monaco-list-row', { hasText: 'refund.txt' }).first().click();
    const status = page.locator('.statusbar-item', { hasText: 'support/refund v3' }).first();
    await status.waitFor({ state: 'visible', timeout: 30_000 });
    log(`status bar: ${(await status.innerText()).trim()}`);
    await shot(page, 'vscode-status-bar.png');

    // Run Test Suite on the active prompt file: progress, then the results panel.
    await palette(page, 'PromStack: Run Test Suite');
    const suiteInput = page.locator('.quick-input-widget input');
    await waitFor('the suite input box', async () => (await suiteInput.inputValue()) === 'regression', 20_000);
    await page.keyboard.press('Enter');
    await page.locator('.tabs-container .tab', { hasText: 'Tests: regression' }).first().waitFor({ timeout: 60_000 });
    const notice = page.locator('.notifications-toasts .notification-toast', { hasText: 'regression: 1/2 passed' }).first();
    await notice.waitFor({ timeout: 20_000 });
    const panel = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
    await panel.locator('text=Cases that did not pass (1)').waitFor({ timeout: 20_000 });
    const failedRow = await panel.locator('tbody tr.fail').first().innerText();
    assertTrue(failedRow.includes('store credit only') && failedRow.includes('fail'), `the results table lists the failing case first (${failedRow.replace(/\s+/g, ' ').slice(0, 80)}...)`);
    await shot(page, 'vscode-test-results.png');

    // Run Prompt on the prompt file: it asks for {{ product }}, then shows output, tokens, cost, latency.
    await page.locator('.tabs-container .tab', { hasText: 'refund.txt' }).first().click();
    await palette(page, 'PromStack: Run Prompt');
    const variableBox = page.locator('.quick-input-widget', { hasText: '{{ product }}' });
    await variableBox.waitFor({ state: 'visible', timeout: 20_000 });
    await variableBox.locator('input').fill('shoes');
    await page.keyboard.press('Enter');
    const output = page.locator('.monaco-editor .view-lines', { hasText: 'on gpt-4o-mini' }).first();
    await output.waitFor({ state: 'visible', timeout: 60_000 });
    const shown = (await output.innerText()).replace(/\u00a0/g, ' ');
    assertTrue(/# support\/refund v3 on gpt-4o-mini/.test(shown) && /\d+ in \/ \d+ out tokens · \$[\d.]+ · \d+ ms/.test(shown) && shown.includes('refund policy for shoes'), `Run Prompt shows the output with tokens, cost and latency (${shown.split('\n')[1]})`);
    await shot(page, 'vscode-run-prompt.png');

    // A save that breaks a case, made by another process (as the watcher or the CLI would): the
    // new version drops {{ product }}, so the "shoes" case that v3 passes fails. Its check on
    // save runs in the background; the tree shows its badge when it finishes.
    const saver = new PromStackClient(resolveLaunch({ command: promstackCommand(), pythonPath: '', store: '' }, ws), { env: { ...env } });
    let check: VersionCheck | null | undefined;
    try {
      const saved = await saver.updatePrompt('support/refund', { template: 'Explain our refund policy.\nKeep it short.', message: 'no product' });
      assertTrue(saved.version === 4 && saved.created, `the save made v4 (got v${saved.version})`);
      check = await waitFor('the check on save of v4 to finish', async () => {
        const found = (await saver.getHistory('support/refund', { limit: 5 })).versions.find((v) => v.version === 4)?.check;
        return found && found.status !== 'pending' ? found : undefined;
      }, 120_000, 500);
    } finally {
      await saver.close();
    }
    assertTrue(check.status === 'checked' && check.broke.length === 1, `v4's check broke one case (${check.status}: ${check.text})`);
    const badged = page.locator('.monaco-list-row', { hasText: 'v4 · no product' }).first();
    await waitFor('the badge on v4 in the tree', async () => (await badged.innerText()).includes(check!.text), 60_000);
    log(`tree row: ${(await badged.innerText()).replace(/\s+/g, ' ')}`);
    assertTrue(await badged.locator('.codicon-warning').count() === 1, 'v4 has the warning icon');
    const broke = page.locator('.notifications-toasts .notification-toast', { hasText: 'v4 of support/refund broke 1 case' }).first();
    await broke.waitFor({ timeout: 30_000 });
    await shot(page, 'vscode-check-badge.png');
    await broke.locator('.monaco-button', { hasText: 'Show Cases' }).first().click();
    await page.locator('.tabs-container .tab', { hasText: 'Check: support/refund v4' }).first().waitFor({ timeout: 20_000 });
    const cases = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
    await cases.locator('text=Broke (1)').waitFor({ timeout: 20_000 });
    const brokeRow = await cases.locator('tbody tr').first().innerText();
    assertTrue(brokeRow.includes(check.broke[0].case) && brokeRow.includes('shoes'), `Show Cases lists the broken case (${brokeRow.replace(/\s+/g, ' ').slice(0, 80)})`);
    await shot(page, 'vscode-check-cases.png');

    // Compare Behaviour on two selected version rows, v3 and v4, from the tree's context menu
    // (the webview just opened may take the focus and close a quick pick: the tree does not).
    // Room for the panel: close the editors (Run Prompt's output is an untitled document).
    await palette(page, 'View: Close All Editor Groups');
    const dontSave = page.locator('.monaco-dialog-box .monaco-button', { hasText: "Don't Save" }).first();
    await dontSave.waitFor({ state: 'visible', timeout: 10_000 }).then(() => dontSave.click(), () => undefined);
    const v3Row = page.locator('.monaco-list-row', { hasText: 'v3 · Rolled back' }).first();
    const compareItem = page.locator('.monaco-menu .action-item', { hasText: 'Compare Behaviour' }).first();
    const comparing = page.locator('.notifications-toasts .notification-toast', { hasText: 'Comparing what support/refund v3 and v4 do' }).first();
    const behaviourTab = page.locator('.tabs-container .tab', { hasText: 'Behaviour: support/refund v3 ↔ v4' }).first();
    await waitFor('Compare Behaviour on v3 and v4', async () => {
      if (!(await compareItem.isVisible())) {
        await v3Row.click();
        await badged.click({ modifiers: ['Control'] });
        await badged.click({ button: 'right' });
        await compareItem.waitFor({ state: 'visible', timeout: 10_000 });
      }
      await compareItem.hover();
      await compareItem.click();
      return Promise.any([comparing.waitFor({ timeout: 5000 }), behaviourTab.waitFor({ timeout: 5000 })]).then(() => true, () => false);
    }, 45_000, 0);
    await behaviourTab.waitFor({ timeout: 120_000 });
    const behaviour = page.frameLocator('iframe.webview.ready').frameLocator('iframe#active-frame');
    await behaviour.locator('th', { hasText: 'A: v3' }).waitFor({ timeout: 20_000 });
    const behaviourRows = await behaviour.locator('tbody tr').count();
    assertTrue(behaviourRows === 2, `the behaviour diff shows both cases of the suite (${behaviourRows})`);
    await comparing.waitFor({ state: 'hidden', timeout: 30_000 });
    await shot(page, 'vscode-behaviour.png');
    ok = true;
  } catch (error) {
    const page = context?.pages()[0];
    if (page) {
      await page.screenshot({ path: path.join(os.tmpdir(), 'promstack-e2e-failure.png') }).catch(() => undefined);
      log(`failure screenshot: ${path.join(os.tmpdir(), 'promstack-e2e-failure.png')}`);
    }
    throw error;
  } finally {
    await context?.close().catch(() => undefined);
    await stopAll();
    fake?.stop();
    if (!ok && fs.existsSync(codeLog)) {
      log(`code-server log (last lines):\n${fs.readFileSync(codeLog, 'utf8').split('\n').slice(-40).join('\n')}`);
    }
    fs.rmSync(root, { recursive: true, force: true });
    log(`${ok ? 'passed' : 'FAILED'} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  }
}

function assertTrue(condition: boolean, what: string): void {
  if (!condition) {
    throw new Error(`e2e check failed: ${what}`);
  }
  log(`ok: ${what}`);
}

// Interrupted (Ctrl-C, a CI timeout): still stop code-server and what it started.
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    log(`${signal}: stopping what this test started`);
    void stopAll().finally(() => process.exit(1));
  });
}

main().then(
  () => {
    console.log('1 passed, 0 failed');
  },
  (error) => {
    console.error(error);
    console.log('0 passed, 1 failed');
    process.exit(1);
  },
);
