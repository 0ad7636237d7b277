// The extension against a real team server: `promstack serve` on a temporary store with named
// tokens, and src/client.ts's PromStackClient started the way the extension starts it with
// `promstack.serverUrl` set and a token from secret storage (resolveLaunch → `promstack mcp` with
// PROMSTACK_URL and PROMSTACK_TOKEN), from a workspace of its own with no store in it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { PromStackClient, ToolError } from '../../src/client';
import { explainToolError, resolveLaunch } from '../../src/launch';
import { buildTree } from '../../src/tree';
import { createToken, promstackCommand, startTeamServer, tempWorkspace, type TeamServer } from './server';

const serverSide = tempWorkspace();
const clientSide = tempWorkspace();
let server: TeamServer | undefined;
const tokens: Record<string, string> = {};
const clients: PromStackClient[] = [];
const stderr: string[] = [];

/** The environment of VS Code's extension host, without any store or server of the test's own:
 *  everything the client knows of the server comes from the settings and the token. */
function hostEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  for (const name of ['PROMSTACK_DB', 'PROMSTACK_URL', 'PROMSTACK_TOKEN', 'PROMSTACK_SERVE_TOKEN', 'PROMSTACK_USER']) {
    delete env[name];
  }
  return env;
}

/** A client as the extension makes one for `promstack.serverUrl` and the stored token. */
function clientWith(token: string | undefined, onPromptsChanged?: () => void): PromStackClient {
  const launch = resolveLaunch({ command: promstackCommand(), pythonPath: '', store: '', serverUrl: `${server!.url}/` }, clientSide.dir, undefined, token);
  const client = new PromStackClient(launch, { env: hostEnv(), onStderr: (line) => stderr.push(line), onPromptsChanged });
  clients.push(client);
  return client;
}

/** Resolves once `check` holds, polling; rejects with `what` after `ms`. */
async function eventually(what: string, check: () => boolean, ms = 60_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`${what} did not happen within ${ms / 1000}s`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
}

let alice: PromStackClient;
let bob: PromStackClient;
let carol: PromStackClient;
let aliceChanges = 0;

before(async () => {
  execFileSync(promstackCommand(), ['init'], { cwd: serverSide.dir, env: { ...hostEnv(), PROMSTACK_DB: serverSide.db }, stdio: 'ignore' });
  for (const [name, role] of [['alice', 'editor'], ['bob', 'editor'], ['carol', 'viewer']]) {
    tokens[name] = createToken(serverSide.db, name, role);
  }
  server = await startTeamServer(serverSide.db, serverSide.dir);
  alice = clientWith(tokens.alice, () => aliceChanges++);
  bob = clientWith(tokens.bob);
  carol = clientWith(tokens.carol);
});

after(async () => {
  try {
    if (process.env.PROMSTACK_TEST_DEBUG && stderr.length) {
      console.error(`promstack mcp stderr:\n${stderr.join('\n')}`);
    }
    await Promise.all(clients.map((c) => c.close()));
  } finally {
    try {
      await server?.stop();
    } finally {
      serverSide.cleanup();
      clientSide.cleanup();
    }
  }
});

describe('promstack.serverUrl + a token: the extension works on the team server\'s store', () => {
  it('the launch carries the URL and the token, and no store of its own', () => {
    const launch = alice.launch;
    assert.deepEqual(launch.args, ['mcp']);
    assert.deepEqual(launch.env, { PROMSTACK_URL: server!.url, PROMSTACK_TOKEN: tokens.alice }, 'the trailing slash of the setting is dropped');
  });

  it('list_prompts answers from the server (an empty store)', async () => {
    assert.deepEqual(await alice.listPrompts(), []);
  });

  it('create_prompt and update_prompt save versions on the server, authored by the token\'s name', async () => {
    const v1 = await alice.createPrompt('support/refund', 'Explain our refund policy for {{ product }}.', { model_config: { model: 'gpt-4o-mini' }, message: 'first' });
    assert.deepEqual([v1.version, v1.created, v1.author], [1, true, 'alice']);
    const v2 = await alice.updatePrompt('support/refund', { template: 'Politely explain our refund policy for {{ product }}.', message: 'polite' });
    assert.deepEqual([v2.version, v2.created, v2.author], [2, true, 'alice']);
    const prompts = await alice.listPrompts();
    assert.deepEqual(prompts.map((p) => [p.name, p.head, p.created_by]), [['support/refund', 2, 'alice']]);
    assert.deepEqual(buildTree(prompts).map((n) => n.kind), ['folder']);
    // Nothing was written on the client's side: the workspace has no store.
    assert.equal(fs.existsSync(clientSide.db), false);
  });

  it('get_history and diff_versions read the server\'s versions', async () => {
    const h = await alice.getHistory('support/refund');
    assert.deepEqual(h.versions.map((v) => [v.version, v.author, v.message]), [[2, 'alice', 'polite'], [1, 'alice', 'first']]);
    const d = await alice.diffVersions('support/refund', 1, 2);
    assert.deepEqual([d.from_version, d.to_version, d.added, d.removed], [1, 2, 1, 1]);
    assert.match(d.unified, /^-Explain our refund policy/m);
    assert.match(d.unified, /^\+Politely explain our refund policy/m);
  });

  it('a second user sees the first one\'s saves, and their own save is theirs; the first is told', async () => {
    const seen = await bob.getPrompt('support/refund');
    assert.deepEqual([seen.version, seen.author, seen.template], [2, 'alice', 'Politely explain our refund policy for {{ product }}.']);
    const before = aliceChanges;
    const v3 = await bob.updatePrompt('support/refund', { template: 'Kindly explain our refund policy for {{ product }}.', message: 'kinder' });
    assert.deepEqual([v3.version, v3.author], [3, 'bob']);
    const h = await alice.getHistory('support/refund');
    assert.deepEqual(h.versions.map((v) => [v.version, v.author]), [[3, 'bob'], [2, 'alice'], [1, 'alice']]);
    // `promstack mcp` over a server polls its change mark and announces others' saves, which
    // is what refreshes the tree in the extension.
    await eventually('prompts/list_changed on alice\'s client after bob\'s save', () => aliceChanges > before);
  });

  it('a viewer token reads, and its writes are refused with the role they need', async () => {
    assert.deepEqual((await carol.listPrompts()).map((p) => p.name), ['support/refund']);
    await assert.rejects(carol.updatePrompt('support/refund', { template: 'Carol was here {{ product }}.' }),
      (e: unknown) => e instanceof ToolError && /needs the editor role/.test(e.message) && /'carol' is viewer/.test(e.message));
    await assert.rejects(carol.createPrompt('carol/draft', 'Hello.'),
      (e: unknown) => e instanceof ToolError && /needs the editor role/.test(e.message));
    const h = await alice.getHistory('support/refund');
    assert.equal(h.versions[0].version, 3, 'nothing was saved');
  });

  // Over PROMSTACK_URL, `promstack mcp`'s set_label asks deploy.label_role for the role the label
  // needs, which reads the workspace config through client.store, which a RemoteClient refuses
  // ("needs a local store file and does not work over a team server yet"). The server checks
  // the role itself; until the tool leaves it to the server, this is a known gap.
  it('set_label moves a label on the server; the role it needs is named', async () => {
    const moved = await alice.setLabel('support/refund', 'reviewed', 1, 'read by alice');
    assert.deepEqual([moved.label, moved.to_version, moved.actor], ['reviewed', 1, 'alice']);
    const [refund] = await bob.listPrompts();
    assert.equal(refund.labels.reviewed, 1, 'another client sees the label');
    await assert.rejects(alice.setLabel('support/refund', 'production', 1, 'ship it'),
      (e: unknown) => e instanceof ToolError && /needs the deployer role/.test(e.message) && /'alice' is editor/.test(e.message));
    await assert.rejects(carol.setLabel('support/refund', 'reviewed', 2),
      (e: unknown) => e instanceof ToolError && /needs the editor role/.test(e.message) && /'carol' is viewer/.test(e.message));
    assert.equal((await alice.listPrompts())[0].labels.reviewed, 1, 'the refused moves moved nothing');
  });

  it('a wrong token, or none, gets a sentence saying what to do, and the command that stores one', async () => {
    const storeOne = / \(run 'PromStack: Set Team Server Token' to store yours\)$/;
    const wrong = clientWith('ps_not-a-token-this-server-made');
    await assert.rejects(wrong.listPrompts(), (e: unknown) => e instanceof ToolError
      && /token is not one this server knows/.test(e.message) && /promstack token create/.test(e.message)
      && storeOne.test(explainToolError(e.message)));
    const none = clientWith(undefined);
    assert.equal(none.launch.env.PROMSTACK_TOKEN, undefined);
    await assert.rejects(none.listPrompts(), (e: unknown) => e instanceof ToolError
      && /needs a token/.test(e.message) && /promstack token create/.test(e.message)
      && storeOne.test(explainToolError(e.message)));
  });
});
