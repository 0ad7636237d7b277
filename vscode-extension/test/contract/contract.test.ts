// The extension's client module (src/client.ts) against a real `promstack mcp` subprocess on a
// temporary store: the tool call behind every command, and the shape of what comes back.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { after, before, describe, it } from 'node:test';
import { MissingToolError, PromStackClient, ToolError } from '../../src/client';
import { BreakWatch, brokeMessage, checkBadge, checkTooltip } from '../../src/checks';
import { behaviourRows, formatMetrics, formatRunResult, leaderboardRows, testResultRows, versionDocument } from '../../src/format';
import { behaviourHtml, testResultsHtml } from '../../src/html';
import type { VersionCheck } from '../../src/types';
import { explainStartFailure, explainToolError, resolveLaunch } from '../../src/launch';
import { buildTree, versionNodes } from '../../src/tree';
import { promstackCommand, pythonCommand, startFakeLlm, tempWorkspace } from './server';

const ws = tempWorkspace();
let fake: { url: string; stop: () => void } | undefined;
let client: PromStackClient;
const stderr: string[] = [];
let changes = 0;

function launchFor(extraEnv: Record<string, string> = {}) {
  const launch = resolveLaunch({ command: promstackCommand(), pythonPath: '', store: ws.db }, ws.dir);
  launch.env = { ...launch.env, ...extraEnv };
  return launch;
}

function keys(value: object): string[] {
  return Object.keys(value).sort();
}

/** The fields the extension reads are all there (a newer server may send more). */
function assertHas(value: object, fields: string[]): void {
  assert.deepEqual(fields.filter((f) => !(f in value)), [], `missing from ${JSON.stringify(keys(value))}`);
}

const VERSION_KEYS = ['author', 'branch', 'check', 'created', 'created_at', 'kind', 'merge_parent', 'message', 'model_config', 'name', 'parent', 'prompt_id', 'sha256', 'source', 'template', 'variables', 'version', 'warnings'];

before(async () => {
  execFileSync(promstackCommand(), ['init'], { cwd: ws.dir, env: { ...process.env, PROMSTACK_DB: ws.db }, stdio: 'ignore' });
  fake = await startFakeLlm().catch(() => undefined);
  const env: Record<string, string> = { PROMSTACK_USER: 'contract-test', OPENAI_API_KEY: 'sk-test' };
  if (fake) {
    Object.assign(env, { OPENAI_API_BASE: fake.url, OPENAI_BASE_URL: fake.url });
  }
  client = new PromStackClient(launchFor(env), {
    onStderr: (line) => stderr.push(line),
    onPromptsChanged: () => changes++,
  });
});

after(async () => {
  if (process.env.PROMSTACK_TEST_DEBUG && stderr.length) {
    console.error(`promstack mcp stderr:\n${stderr.join('\n')}`);
  }
  await client?.close();
  fake?.stop();
  ws.cleanup();
});

describe('version control (tree, history, diff, open, rollback, branch, merge, label)', () => {
  it('list_prompts on an empty store is an empty tree', async () => {
    assert.deepEqual(await client.listPrompts(), []);
    assert.deepEqual(buildTree([]), []);
  });

  it('create_prompt and update_prompt make versions 1..3', async () => {
    const v1 = await client.createPrompt('support/refund', 'Explain our refund policy for {{ product }}.', { model_config: { model: 'gpt-4o-mini', temperature: 0.2 }, message: 'first' });
    assert.deepEqual(keys(v1), VERSION_KEYS);
    assert.equal(v1.version, 1);
    assert.equal(v1.created, true);
    assert.deepEqual(v1.variables.map((v) => v.name), ['product']);
    const v2 = await client.updatePrompt('support/refund', { template: 'Politely explain our refund policy for {{ product }}.', message: 'polite' });
    const v3 = await client.updatePrompt('support/refund', { template: 'Politely explain our 30-day refund policy for {{ product }}.', message: '30 days' });
    assert.deepEqual([v2.version, v3.version], [2, 3]);
    const same = await client.updatePrompt('support/refund', { template: v3.template as string });
    assert.equal(same.created, false, 'identical content makes no version');
    await client.createPrompt('greeting', [{ role: 'system', content: 'Greet {{ name }}.' }]);
  });

  it('list_prompts gives what the tree is built from', async () => {
    const prompts = await client.listPrompts();
    const refund = prompts.find((p) => p.name === 'support/refund')!;
    assert.deepEqual(keys(refund), ['archived', 'branches', 'created_at', 'created_by', 'description', 'head', 'id', 'labels', 'name', 'versions']);
    assert.deepEqual([refund.head, refund.versions, refund.branches], [3, 3, ['main']]);
    const tree = buildTree(prompts);
    assert.deepEqual(tree.map((n) => n.kind), ['folder', 'prompt']);
  });

  it('get_history (Show History, the tree\'s versions) is newest first with the row fields', async () => {
    const h = await client.getHistory('support/refund');
    assert.deepEqual(keys(h), ['name', 'prompt_id', 'versions']);
    assert.deepEqual(h.versions.map((v) => v.version), [3, 2, 1]);
    assert.deepEqual(keys(h.versions[0]), ['author', 'branch', 'check', 'created_at', 'merge_parent', 'message', 'parent', 'sha256', 'source', 'version']);
    // No suite is tied to the prompt yet: the check on save says so, and the tree shows no badge.
    assert.equal(h.versions[0].check?.status, 'no_suite');
    assert.equal(checkBadge(h.versions[0].check), undefined);
    assert.equal(h.versions[0].author, 'contract-test');
    assert.equal(h.versions[0].parent, 2);
    const nodes = versionNodes(h.name, h.versions, {}, 3);
    assert.equal(nodes[0].isHead, true);
  });

  it('get_prompt by version (Open Version, the promstack: documents, Diff editors)', async () => {
    const v1 = await client.getPrompt('support/refund', { version: 1 });
    assert.equal(versionDocument(v1), '---\nmodel: gpt-4o-mini\ntemperature: 0.2\n---\nExplain our refund policy for {{ product }}.\n');
    const chat = await client.getPrompt('greeting');
    assert.equal(chat.kind, 'chat');
    assert.equal(versionDocument(chat), '[system]\nGreet {{ name }}.\n');
    const byId = await client.getPrompt(v1.prompt_id, { version: 2 });
    assert.equal(byId.message, 'polite');
  });

  it('diff_versions answers with a unified diff and counts', async () => {
    const d = await client.diffVersions('support/refund', 1, 3);
    assert.deepEqual(keys(d), ['added', 'added_words', 'behaviour', 'config_changes', 'from_version', 'name', 'prompt_id', 'removed', 'removed_words', 'to_version', 'unified']);
    assert.equal(d.behaviour, null, 'nothing runs without behaviour: true');
    assert.deepEqual([d.from_version, d.to_version, d.added, d.removed], [1, 3, 1, 1]);
    assert.match(d.unified, /^-Explain our refund policy/m);
    assert.match(d.unified, /^\+Politely explain our 30-day/m);
  });

  it('rollback_prompt appends a version with the old content (Roll Back to This Version)', async () => {
    const v4 = await client.rollback('support/refund', 1, { message: 'Rolled back to v1 from VS Code' });
    assert.deepEqual([v4.version, v4.created, v4.source, v4.template], [4, true, 'rollback', 'Explain our refund policy for {{ product }}.']);
    const h = await client.getHistory('support/refund');
    assert.deepEqual(h.versions.map((v) => v.version), [4, 3, 2, 1], 'history is never rewritten');
  });

  it('create_branch, update on the branch, merge_branch (Create Branch, Merge Branch)', async () => {
    const b = await client.createBranch('support/refund', 'exp/short');
    assert.deepEqual(keys(b), ['created_at', 'created_by', 'forked_from', 'head', 'name', 'prompt_id']);
    assert.deepEqual([b.name, b.head], ['exp/short', 4]);
    const onBranch = await client.updatePrompt('support/refund', { template: 'Explain our refund policy for {{ product }} in one sentence.', branch: 'exp/short' });
    assert.equal(onBranch.branch, 'exp/short');
    assert.equal((await client.getPrompt('support/refund')).version, 4, 'work on a branch never moves main');
    const merged = await client.mergeBranch('support/refund', 'exp/short', { message: 'Merged exp/short from VS Code' });
    assert.equal(merged.branch, 'main');
    assert.equal(merged.template, 'Explain our refund policy for {{ product }} in one sentence.');
    assert.deepEqual((await client.listPrompts()).find((p) => p.name === 'support/refund')!.branches.sort(), ['exp/short', 'main']);
  });

  it('set_label moves a label and says where from (Set Label / Deploy)', async () => {
    // production is a gated environment: with no suite to pass, the move is refused with the gate's reasons
    await assert.rejects(client.setLabel('support/refund', 'production', 3, 'approved'),
      (e: unknown) => e instanceof ToolError && /production gate refused/.test(e.message));
    const first = await client.setLabel('support/refund', 'production', 3, 'approved', true);
    assert.deepEqual(keys(first), ['actor', 'at', 'from_version', 'label', 'prompt_id', 'reason', 'to_version']);
    assert.deepEqual([first.from_version, first.to_version, first.reason], [null, 3, 'approved']);
    const second = await client.setLabel('support/refund', 'production', 1, 'back to v1', true);
    assert.deepEqual([second.from_version, second.to_version], [3, 1]);
    assert.equal((await client.listPrompts()).find((p) => p.name === 'support/refund')!.labels.production, 1);
    assert.equal((await client.getPrompt('support/refund', { label: 'production' })).version, 1);
  });

  it('delete_prompt archives and restore_prompt brings back', async () => {
    assert.equal((await client.deletePrompt('greeting')).archived, true);
    assert.equal((await client.listPrompts()).some((p) => p.name === 'greeting'), false);
    assert.equal((await client.restorePrompt('greeting')).archived, false);
  });

  it('a bad argument is a ToolError with a sentence a person can act on', async () => {
    await assert.rejects(client.getPrompt('support/refund', { version: 99 }), (e: unknown) => e instanceof ToolError && /99/.test(e.message) && /newest|head|has no version|versions/i.test(e.message));
    await assert.rejects(client.getPrompt('no/such/prompt'), (e: unknown) => e instanceof ToolError && /no\/such\/prompt/.test(e.message));
    await assert.rejects(client.mergeBranch('support/refund', 'nope'), ToolError);
    await assert.rejects(client.call('no_such_tool', {}), MissingToolError);
  });
});

describe('store changes reach the extension', () => {
  it('a write by another process (here a second server, as the watcher or CLI would) announces prompts changed', async () => {
    const before = changes;
    const other = new PromStackClient(launchFor());
    try {
      await other.createPrompt('from/elsewhere', 'Made by another process.');
    } finally {
      await other.close();
    }
    const deadline = Date.now() + 8000;
    while (changes === before && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
    }
    assert.ok(changes > before, 'notifications/prompts/list_changed arrived');
    assert.ok((await client.listPrompts()).some((p) => p.name === 'from/elsewhere'));
  });
});

describe('running and evaluating (Run Prompt, Run Test Suite, Judge, Arena, Show Metrics)', () => {
  const needs = async (t: { skip: (m: string) => void }, tool: string): Promise<boolean> => {
    if (!(await client.hasTool(tool))) {
      t.skip(`this server has no ${tool} tool yet`);
      return false;
    }
    if (!fake) {
      t.skip('tests/fake_llm.py did not start');
      return false;
    }
    return true;
  };

  it('run_prompt returns output, tokens, cost and latency', async (t) => {
    if (!(await needs(t, 'run_prompt'))) {
      return;
    }
    const r = await client.runPrompt('support/refund', { product: 'shoes' });
    assert.deepEqual(keys(r), ['cache_hit', 'call_id', 'cost_usd', 'guards', 'input_tokens', 'latency_ms', 'model', 'output', 'output_tokens', 'priced', 'prompt_id', 'prompt_version', 'status', 'unpriced']);
    assert.match(String(r.output), /shoes/, 'the fake model echoes the rendered prompt');
    assert.match(formatRunResult('support/refund', r), /^# support\/refund v\d+ on gpt-4o-mini\n# \d+ in \/ \d+ out tokens · /);
    await assert.rejects(client.runPrompt('support/refund', {}), (e: unknown) => e instanceof ToolError && /product/.test(e.message), 'a missing variable is named');
  });

  it('get_metrics returns the window and groups (Show Metrics)', async (t) => {
    if (!(await needs(t, 'get_metrics'))) {
      return;
    }
    const m = await client.getMetrics({ prompt: 'support/refund', since: '24h', by: ['model'] });
    assert.deepEqual(keys(m), ['by', 'groups', 'percentile_method', 'since', 'unpriced', 'unpriced_calls', 'unpriced_models', 'until']);
    assert.ok(Array.isArray(m.groups));
    assert.match(formatMetrics(m), /^PromStack metrics/);
  });

  it('import_test_cases, run_tests, get_run, judge_run (Run Test Suite, Judge)', async (t) => {
    if (!(await needs(t, 'run_tests')) || !(await needs(t, 'import_test_cases'))) {
      return;
    }
    const suite = await client.importTestCases({ suite: 'regression', prompt: 'support/refund', cases: 'input,product,assert:contains\nshoes?,shoes,shoes\nhats?,hats,zzz-not-in-the-echo\n' });
    assert.deepEqual(keys(suite), ['cases', 'prompt_id', 'settings', 'source', 'suite']);
    assert.equal(suite.cases, 2);
    const progress: number[] = [];
    const run = await client.runTests({ suite: 'regression', prompt: 'support/refund' }, { onProgress: (done) => progress.push(done) });
    assert.deepEqual(keys(run), ['cost_usd', 'criteria', 'errors', 'failed', 'failing', 'input_tokens', 'kind', 'latency_ms', 'models', 'output_tokens', 'pass_rate', 'passed', 'per_model', 'prompt_id', 'prompt_version', 'results', 'run_id', 'score', 'status', 'suite', 'threshold', 'total', 'unchecked', 'unpriced_note', 'unscored', 'unscored_reason', 'verdict']);
    assert.equal(run.total, 2);
    assert.ok(typeof run.run_id === 'string' && run.run_id.length > 0);
    assert.deepEqual([run.results, run.failed, run.errors, run.failing.length], [2, 1, 0, 1], 'the case whose expected text is not in the echo fails');
    assert.equal(run.failing[0].status, 'fail');
    assert.ok(testResultRows(run).length === run.failing.length);
    assert.match(testResultsHtml(run), /Cases that did not pass/);
    const again = await client.getRun(run.run_id);
    assert.deepEqual([again.run_id, again.kind, again.test?.run_id], [run.run_id, 'test', run.run_id]);
    if (await client.hasTool('judge_run')) {
      const judged = await client.judgeRun(run.run_id, { criteria: ['Is it relevant?'], scoring: '1-5' });
      assert.equal(typeof judged.run_id, 'string');
      assert.notEqual(judged.run_id, run.run_id, 'judging makes a new run');
    }
  });

  it('run_arena returns a leaderboard (Arena)', async (t) => {
    if (!(await needs(t, 'run_arena'))) {
      return;
    }
    // The prompt's own model (gpt-4o-mini) competes, so it cannot also be the judge: a sentence, not a self-judged board.
    await assert.rejects(client.runArena({ suite: 'regression', prompt: 'support/refund', models: ['gpt-4o-mini', 'gpt-4o'] }),
      (e: unknown) => e instanceof ToolError && /judge model that is not one of the models it compares/.test(e.message));
    const report = await client.runArena({ suite: 'regression', prompt: 'support/refund', models: ['gpt-4o-mini', 'gpt-4o'], judge_model: 'gpt-4.1' });
    assert.deepEqual(keys(report), ['errors', 'headline', 'human', 'matches', 'models', 'no_separation', 'order_flip_rate', 'overall', 'pairs', 'ratings', 'run_id', 'separated', 'suite']);
    assert.deepEqual(report.models, ['gpt-4o-mini', 'gpt-4o']);
    assert.equal(leaderboardRows(report).length, 2);
    const again = await client.getRun(report.run_id);
    assert.equal(again.kind, 'arena');
  });

  it('deploy_prompt moves an environment through its gate (Set Label / Deploy)', async (t) => {
    if (!(await needs(t, 'deploy_prompt'))) {
      return;
    }
    const result = await client.deployPrompt('support/refund', { environment: 'staging', version: 2, reason: 'contract test', force: true });
    assert.ok(['status', 'prompt_id', 'name', 'environment', 'checks', 'message'].every((k) => k in result));
    assert.equal(result.environment, 'staging');
  });
});

describe('the check on save, Compare Behaviour and Bisect (issue 21)', () => {
  // The suite 'regression' (imported above, tied to support/refund) has a case that passes
  // while the template names {{ product }} (the fake model echoes it) and one that never does.
  let saved = 0;
  let parent = 0;
  let check: VersionCheck | null | undefined;

  it('a save that drops {{ product }} is checked in the background: score, delta, the broken case', async (t) => {
    if (!fake || !(await client.hasTool('run_tests'))) {
      t.skip('needs the fake model and the evaluation tools');
      return;
    }
    const opened = new Date(Date.now() - 1000);
    const watch = new BreakWatch(opened);
    const v = await client.updatePrompt('support/refund', { template: 'Explain our refund policy in one sentence.', message: 'no product' });
    saved = v.version;
    parent = v.parent!;
    assert.ok(v.created);
    const announced: number[] = [];
    const deadline = Date.now() + 90_000;
    while (Date.now() < deadline) {
      const h = await client.getHistory('support/refund', { limit: 5 });
      announced.push(...watch.observe('support/refund', h.versions).map((x) => x.version));
      check = h.versions.find((x) => x.version === saved)?.check;
      if (check && check.status !== 'pending') {
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.ok(check, 'the version carries a check');
    assertHas(check, ['broke', 'checked_at', 'cost_usd', 'delta', 'fixed', 'parent_score', 'parent_version', 'reason', 'sample', 'score', 'status', 'suite', 'text']);
    assert.equal(check.status, 'checked', check.text);
    assert.equal(check.suite, 'regression');
    assert.equal(check.parent_version, parent);
    assert.equal(check.broke.length, 1);
    assertHas(check.broke[0], ['case', 'input', 'parent_score', 'reason', 'score']);
    assert.match(check.broke[0].input, /shoes/);
    assert.ok(check.score! < check.parent_score!, 'the new version scores lower');
    assert.equal(checkBadge(check), check.text);
    assert.match(check.text, /broke/);
    assert.match(checkTooltip(check).join('\n'), /broke \(1\):\n {2}\S+ "shoes\?/);
    assert.match(brokeMessage('support/refund', saved, check), new RegExp(`^v${saved} of support/refund broke 1 case \\(`));
    assert.deepEqual(announced, [saved], 'the save is announced once');
    const got = await client.getPrompt('support/refund', { version: saved });
    assert.equal(got.check?.text, check.text, 'get_prompt carries the same check');
  });

  it('diff_versions with behaviour runs both versions on the suite, case by case (Compare Behaviour)', async (t) => {
    if (!saved) {
      t.skip('no checked save to compare');
      return;
    }
    const d = await client.diffVersions('support/refund', parent, saved, { behaviour: true, suite: 'regression' });
    assert.ok(d.behaviour, 'a behaviour diff comes back');
    const b = d.behaviour;
    assertHas(b, ['a_better', 'b_better', 'cases', 'cost_usd', 'from_version', 'same', 'suite', 'text', 'to_version', 'verdict']);
    assert.deepEqual([b.suite, b.from_version, b.to_version, b.cases.length], ['regression', parent, saved, 2]);
    assert.equal(b.a_better + b.b_better + b.same, 2);
    assert.ok(['A better', 'B better', 'same'].includes(b.verdict));
    assertHas(b.cases[0], ['case', 'input', 'margin', 'output_a', 'output_b', 'reason', 'winner']);
    const rows = behaviourRows(b);
    assert.deepEqual(rows.map((r) => r.case), b.cases.map((c) => c.case), 'the server sends the cases changed most first');
    assert.ok(rows.some((r) => r.outputA.includes('shoes') && !r.outputB.includes('shoes')), 'the outputs are the two versions\' own');
    assert.ok(behaviourHtml('support/refund', b).includes(`A: v${parent}`));
    const plain = await client.diffVersions('support/refund', parent, saved);
    assert.equal(plain.behaviour ?? null, null, 'without behaviour nothing runs');
  });

  it('bisect_prompt finds the version that broke the case (Bisect)', async (t) => {
    if (!saved || !check?.broke.length) {
      t.skip('no broken case to look for');
      return;
    }
    const r = await client.bisectPrompt('support/refund', { case: check.broke[0].case, suite: 'regression' });
    assertHas(r, ['culprit', 'diff', 'found', 'model_calls', 'parent', 'reason', 'tested', 'text']);
    assert.deepEqual([r.found, r.culprit, r.parent], [true, saved, parent]);
    assert.match(r.diff, /^-.*\{\{ product \}\}/m);
    assert.ok(r.tested.includes(saved));
    assert.match(r.text, new RegExp(`v${saved}`));
    const unknown = await client.bisectPrompt('support/refund', { case: 'no-such-case', suite: 'regression' }).then((x) => x, (e: unknown) => e);
    assert.ok(unknown instanceof ToolError ? unknown.message.length > 0 : (unknown as { found: boolean }).found === false, 'an unknown case is a sentence, not a culprit');
  });
});

describe('when the server cannot start', () => {
  it('a missing command is ENOENT, explained with the setting that fixes it', async () => {
    const launch = resolveLaunch({ command: 'promstack-not-installed-here', pythonPath: '', store: '' }, ws.dir);
    const broken = new PromStackClient(launch, { timeoutMs: 10_000 });
    const error = await broken.connect().then(() => undefined, (e: unknown) => e);
    await broken.close();
    assert.ok(error, 'connect failed');
    const f = explainStartFailure(launch, error, broken.recentStderr);
    assert.match(f.message, /was not found/);
    assert.equal(f.setting, 'promstack.command');
  });

  it('a workspace without a store gets the command that makes one', async () => {
    const empty = tempWorkspace();
    const env = { ...process.env };
    delete env.PROMSTACK_DB;
    const bare = new PromStackClient(resolveLaunch({ command: promstackCommand(), pythonPath: '', store: '' }, empty.dir), { env });
    try {
      const error = await bare.listPrompts().then(() => undefined, (e: unknown) => e);
      assert.ok(error instanceof ToolError, String(error));
      assert.match(error.message, /^no PromStack workspace.*promstack init/);
      assert.match(explainToolError(error.message), /set promstack\.store\)$/);
    } finally {
      await bare.close();
      empty.cleanup();
    }
  });

  it('an interpreter without PromStack is explained from its stderr', async () => {
    const launch = resolveLaunch({ command: '', pythonPath: '/usr/bin/python3', store: '' }, ws.dir);
    assert.notEqual(pythonCommand(), '', 'python exists');
    const broken = new PromStackClient(launch, { timeoutMs: 10_000 });
    const error = await broken.connect().then(() => undefined, (e: unknown) => e);
    await new Promise((r) => setTimeout(r, 200)); // let the last stderr lines arrive
    await broken.close();
    assert.ok(error, 'connect failed');
    const f = explainStartFailure(launch, error, broken.recentStderr);
    assert.match(f.message, /has no PromStack installed/, `${f.message} / ${broken.recentStderr}`);
    assert.equal(f.setting, 'promstack.pythonPath');
  });

});
