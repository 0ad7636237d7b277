// The end-to-end test's team-server scenario (run.ts calls it once code-server is up): a real
// `promstack serve` with named tokens; a workspace with no store of its own whose settings set
// `promstack.serverUrl`; without a token, the refusal names the command that stores one; the
// token stored through PromStack: Set Team Server Token (VS Code's secret storage); then the
// tree shows the server's prompts, and another person's save reaches it with their name. Its
// own browser, server and workspace, all stopped or removed at the end.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { PromStackClient } from '../../src/client';
import { resolveLaunch } from '../../src/launch';
import { createToken, promstackCommand, startTeamServer, tempWorkspace, type TeamServer } from '../contract/server';

const REPO = path.resolve(__dirname, '../../../..');
const SHOTS = process.env.PROMSTACK_SCREENSHOTS || path.join(REPO, 'build', 'screenshots');
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

function log(message: string): void {
  process.stderr.write(`[e2e team ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function check(condition: boolean, what: string): void {
  if (!condition) {
    throw new Error(`e2e check failed: ${what}`);
  }
  log(`ok: ${what}`);
}

/** The environment of a person's shell: no store, server or token of the test's. */
function cleanEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['PROMSTACK_DB', 'PROMSTACK_URL', 'PROMSTACK_TOKEN', 'PROMSTACK_SERVE_TOKEN', 'PROMSTACK_USER']) {
    delete env[name];
  }
  return env;
}

/** A person saving on the team server with their own token, as the CLI or Claude would. */
async function asUser(server: TeamServer, token: string, work: (c: PromStackClient) => Promise<unknown>): Promise<void> {
  const client = new PromStackClient(resolveLaunch({ command: promstackCommand(), pythonPath: '', store: '', serverUrl: server.url }, undefined, undefined, token), { env: cleanEnv() });
  try {
    await work(client);
  } finally {
    await client.close();
  }
}

async function palette(page: Page, command: string): Promise<void> {
  await page.keyboard.press('Escape');
  await page.keyboard.press('F1');
  const input = page.locator('.quick-input-widget input');
  await input.waitFor({ state: 'visible' });
  await input.fill(`>${command}`);
  await page.locator('.quick-input-list .monaco-list-row', { hasText: command }).first().waitFor({ state: 'visible', timeout: 15_000 });
  await page.keyboard.press('Enter');
}

/** Opens a workspace set to the team server at `base` (a running code-server), stores the token
 *  through the extension's command and checks the tree shows the server's prompts. */
export async function teamServerScenario(base: string): Promise<void> {
  const team = tempWorkspace();
  const ws = path.join(team.dir, 'team-workspace');
  let server: TeamServer | undefined;
  let context: BrowserContext | undefined;
  try {
    execFileSync(promstackCommand(), ['init'], { cwd: team.dir, env: { ...cleanEnv(), PROMSTACK_DB: team.db }, stdio: 'ignore' });
    const tokens = { dana: createToken(team.db, 'dana', 'editor'), erin: createToken(team.db, 'erin', 'editor') };
    server = await startTeamServer(team.db, team.dir);
    const url = server.url;
    await asUser(server, tokens.erin, async (c) => {
      await c.createPrompt('onboarding/welcome', 'Welcome {{ name }} to the team.', { message: 'first welcome' });
      await c.updatePrompt('onboarding/welcome', { template: 'Welcome {{ name }} to the team!', message: 'warmer' });
    });
    log(`team server ${url} with onboarding/welcome v2 by erin`);

    // The person's workspace: settings only, no store (nothing would activate on a file here).
    fs.mkdirSync(path.join(ws, '.vscode'), { recursive: true });
    fs.writeFileSync(path.join(ws, '.vscode', 'settings.json'), JSON.stringify({ 'promstack.command': promstackCommand(), 'promstack.serverUrl': url }, null, 2));

    context = await chromium.launchPersistentContext(path.join(team.dir, 'chromium-profile'), {
      executablePath: '/usr/bin/chromium',
      headless: true,
      args: CHROMIUM_FLAGS,
      viewport: { width: 1600, height: 900 },
    });
    const page = context.pages()[0] ?? (await context.newPage());
    await page.goto(`${base}/?folder=${encodeURIComponent(ws)}`);
    await page.locator('.monaco-workbench').waitFor({ state: 'visible', timeout: 90_000 });

    // Before a token is stored, the server's refusal names the command that stores one.
    const activity = page.locator('.activitybar [aria-label^="PromStack"]').first();
    await activity.waitFor({ state: 'visible', timeout: 60_000 });
    await activity.click();
    const refusal = page.locator('.notifications-toasts .notification-toast', { hasText: 'needs a token' }).first();
    await refusal.waitFor({ timeout: 60_000 });
    check((await refusal.innerText()).includes("run 'PromStack: Set Team Server Token'"), 'without a token the tree says which command stores one');
    // The token goes in through the command (a password box) into secret storage.
    await palette(page, 'PromStack: Set Team Server Token');
    const box = page.locator('.quick-input-widget', { hasText: 'token for the team server' });
    await box.waitFor({ state: 'visible', timeout: 30_000 });
    check((await box.locator('input').getAttribute('type')) === 'password', 'the token box hides what is typed');
    await box.locator('input').fill(tokens.dana);
    await page.keyboard.press('Enter');
    await box.waitFor({ state: 'hidden', timeout: 15_000 });

    const prompt = page.locator('.monaco-list-row', { hasText: 'welcome' }).first();
    // Storing the token restarts `promstack mcp` with it, and the tree reloads.
    await page.locator('.monaco-list-row', { hasText: 'onboarding' }).first().waitFor({ timeout: 60_000 });
    await prompt.waitFor({ timeout: 30_000 });
    check(/welcome\s*v2/.test(await prompt.innerText()), 'the tree shows the server\'s onboarding/welcome at v2');
    await prompt.click();
    const erinsRow = page.locator('.monaco-list-row', { hasText: 'v2 · warmer' }).first();
    await erinsRow.waitFor({ timeout: 30_000 });
    check((await erinsRow.innerText()).includes('erin'), 'its history names erin, the token that saved it');

    // Another person's save on the server reaches the tree (the change mark `promstack mcp` polls).
    await asUser(server, tokens.erin, (c) => c.updatePrompt('onboarding/welcome', { template: 'Welcome {{ name }} to the team, glad you are here!', message: 'glad' }));
    const newRow = page.locator('.monaco-list-row', { hasText: 'v3 · glad' }).first();
    await newRow.waitFor({ timeout: 60_000 });
    check((await newRow.innerText()).includes('erin'), 'erin\'s new v3 appears in the tree without a refresh');
    fs.mkdirSync(SHOTS, { recursive: true });
    await page.screenshot({ path: path.join(SHOTS, 'vscode-team-server.png') });
    log(`screenshot ${path.join(SHOTS, 'vscode-team-server.png')}`);
  } finally {
    await context?.close().catch(() => undefined);
    await server?.stop();
    team.cleanup();
  }
}
