// The SDK against a real `promstack serve` on a free 127.0.0.1 port, over a temporary store
// holding the examples (prompt 42: versions 1-3, production -> 2, staging -> 3).
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import PromStackDefault, { PromStack, PromStackError, render } from "../index.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const venvBin = join(repo, ".venv", "bin", "promstack");
const BIN = process.env.PROMSTACK_BIN ?? (existsSync(venvBin) ? venvBin : "promstack");
const PYTHON = BIN.includes("/") ? join(dirname(BIN), "python") : "python3";

let tmp;
let db;
const servers = [];

function cli(...args) {
  return execFileSync(BIN, [...args, "--db", db], { cwd: tmp, env: baseEnv(), encoding: "utf8" });
}

function baseEnv(extra = {}) {
  const env = { ...process.env, PROMSTACK_USER: "sdk-test", ...extra };
  delete env.PROMSTACK_DB;
  delete env.PROMSTACK_TOKEN;
  return { ...env, ...extra };
}

function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const { port } = probe.address();
      probe.close(() => ok(port));
    });
  });
}

async function serve(extraEnv = {}, fixedPort = undefined) {
  const port = fixedPort ?? await freePort();
  const child = spawn(BIN, ["serve", "--port", String(port), "--db", db], {
    cwd: tmp, env: baseEnv(extraEnv), stdio: ["ignore", "ignore", "pipe"],
  });
  let stderr = "";
  child.stderr.on("data", (chunk) => { stderr += chunk; });
  servers.push(child);
  const baseUrl = `http://127.0.0.1:${port}`;
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`promstack serve exited: ${stderr}`);
    try {
      const r = await fetch(`${baseUrl}/healthz`, extraEnv.PROMSTACK_TOKEN
        ? { headers: { Authorization: `Bearer ${extraEnv.PROMSTACK_TOKEN}` } } : {});
      if (r.ok) return baseUrl;
    } catch { /* not up yet */ }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`promstack serve did not come up: ${stderr}`);
}

let baseUrl;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "promstack-sdk-"));
  db = join(tmp, ".promstack", "promstack.db");
  process.env.PROMSTACK_CACHE_DIR = join(tmp, "prompt-cache"); // last good copies: not in ~/.cache
  execFileSync(BIN, ["init"], { cwd: tmp, env: baseEnv() });
  // Its production and staging labels are taken as they are: forced, with a reason (audited).
  cli("import", join(repo, "examples", "workspace.json"), "--force", "--reason", "the examples");
  // The server's label cache off: the A/B test started below is seen at once.
  writeFileSync(join(tmp, ".promstack", "config.toml"), "[deploy]\ncache_ttl = 0\n");
  baseUrl = await serve();
});

after(() => {
  for (const child of servers) child.kill();
  rmSync(tmp, { recursive: true, force: true });
});

describe("getPrompt", () => {
  test("the seed's call works as written", async () => {
    const client = new PromStack({ baseUrl });
    const prompt = await client.getPrompt({
      id: 42,
      version: 3 // 특정 버전 지정
    });
    assert.equal(prompt.id, 42);
    assert.equal(prompt.version, 3);
    assert.equal(prompt.name, "support/answer");
    assert.match(prompt.template, /전문가로서 답변하세요/);
    // The include is expanded by the server, so the prompt renders here.
    const text = prompt.render({ input: "환불하고 싶어요" });
    assert.match(text, /톤: 정중하고/);
    assert.match(text, /질문: 환불하고 싶어요/);
    assert.match(prompt.source_template, /\{% include "shared\/tone" %\}/);
  });

  test("no selector is the production label; labels by name", async () => {
    const client = new PromStack({ baseUrl });
    assert.equal((await client.getPrompt({ id: 42 })).version, 2);
    const staging = await client.getPrompt({ name: "support/answer", label: "staging" });
    assert.equal(staging.version, 3);
    assert.equal(staging.label, "staging");
    assert.equal(PromStackDefault, PromStack);
  });

  test("version and label together is an error, here and on the server", async () => {
    const client = new PromStack({ baseUrl });
    await assert.rejects(client.getPrompt({ id: 42, version: 3, label: "production" }),
      (err) => err instanceof PromStackError && /not version and label/.test(err.message));
    const raw = await fetch(`${baseUrl}/api/prompts/42?version=3&label=production`);
    assert.equal(raw.status, 400);
    assert.match((await raw.json()).error, /give one of version, label or branch/);
  });

  test("unknown prompt, version and label are 404 with a sentence", async () => {
    const client = new PromStack({ baseUrl });
    await assert.rejects(client.getPrompt({ id: 4242 }), (err) => err.status === 404 && /no prompt 4242/.test(err.message));
    await assert.rejects(client.getPrompt({ id: 42, version: 9 }), (err) => err.status === 404 && /newest is 3/.test(err.message));
    await assert.rejects(client.getPrompt({ id: 42, label: "canary" }), (err) => err.status === 404 && /no label 'canary'/.test(err.message));
  });

  test("chat prompts render every message", async () => {
    const client = new PromStack({ baseUrl });
    const refund = await client.getPrompt({ name: "support/refund", label: "latest" });
    assert.deepEqual(refund.render({ input: "환불" })[1], { role: "user", content: "환불" });
  });

  test("fetched prompts are cached for the TTL", async () => {
    let calls = 0;
    const counting = (...args) => { calls += 1; return fetch(...args); };
    const client = new PromStack({ baseUrl, fetch: counting, cacheTtlMs: 60_000 });
    await client.getPrompt({ id: 42, version: 1 });
    await client.getPrompt({ id: 42, version: 1 });
    assert.equal(calls, 1);
    client.clearCache();
    await client.getPrompt({ id: 42, version: 1 });
    assert.equal(calls, 2);
    const uncached = new PromStack({ baseUrl, fetch: counting, cacheTtlMs: 0 });
    await uncached.getPrompt({ id: 42, version: 1 });
    await uncached.getPrompt({ id: 42, version: 1 });
    assert.equal(calls, 4);
  });

  test("an A/B test in staging serves each user one arm, stably", async () => {
    cli("ab", "start", "--prompt", "42", "--a", "3", "--b", "1", "--split", "50", "--force", "--reason", "SDK test");
    const client = new PromStack({ baseUrl, cacheTtlMs: 0 });
    const seen = new Map();
    for (let i = 0; i < 60; i++) {
      const p = await client.getPrompt({ id: 42, label: "staging", userId: `user_${i}` });
      assert.ok([1, 3].includes(p.version));
      assert.equal(p.resolved.kind, "ab");
      assert.equal(p.resolved.arm, p.version === 1 ? "b" : "a");
      seen.set(`user_${i}`, p.version);
    }
    assert.deepEqual(new Set(seen.values()), new Set([1, 3]));
    for (const [user, version] of [...seen].slice(0, 10)) {
      assert.equal((await client.getPrompt({ id: 42, label: "staging", userId: user })).version, version);
    }
    // The Python SDK resolves the same user to the same arm.
    const py = JSON.parse(execFileSync(PYTHON, ["-c",
      "import json,sys; from promstack import Client; c=Client(sys.argv[1]); " +
      "print(json.dumps({u: c.get_prompt(42, label='staging', user_id=u).version for u in sys.argv[2:]}))",
      db, ...[...seen.keys()].slice(0, 10)], { env: baseEnv(), encoding: "utf8" }));
    for (const [user, version] of Object.entries(py)) assert.equal(seen.get(user), version);
    // No user id: what the label points at.
    assert.equal((await client.getPrompt({ id: 42, label: "staging" })).version, 3);
    cli("ab", "stop", "--prompt", "42");
  });
});

describe("the token", () => {
  test("a server with a token refuses requests without it", async () => {
    const url = await serve({ PROMSTACK_TOKEN: "s3cret-token-of-16+" });
    await assert.rejects(new PromStack({ baseUrl: url }).getPrompt({ id: 42 }), (err) => err.status === 401);
    const prompt = await new PromStack({ baseUrl: url, token: "s3cret-token-of-16+" }).getPrompt({ id: 42 });
    assert.equal(prompt.version, 2);
  });
});

describe("render", () => {
  test("variables, attributes, filters, whitespace control, comments", () => {
    const out = render("Hi {{ name }}! {{ user.first | upper }} {{ x | default('none') }} {{- items[1] }}{# note #}.",
      { name: "A", user: { first: "bo" }, items: [1, 2] });
    assert.equal(out, "Hi A! BO none2.");
  });

  test("a missing variable is an error naming it; other Jinja is refused", () => {
    assert.throws(() => render("{{ question }}", {}), /needs the variable 'question'/);
    assert.throws(() => render("a\n{% for x in y %}"), /line 2: \{% for x in y %\}/);
    assert.throws(() => render("{{ x | title }}", { x: "a" }), /filter 'title'/);
  });
});

describe("writes and runs over /api/v1", () => {
  test("save, history, diff, setLabel, deploy and run, with the Python SDK's errors", async () => {
    cli("prompt", "create", "sdk/writes", "--template", "Hello {{ who }}");
    const client = new PromStack({ baseUrl, cacheTtlMs: 0 });
    const saved = await client.save({ name: "sdk/writes", template: "Hello there, {{ who }}", message: "warmer" });
    assert.equal(saved.version, 2);
    assert.equal(saved.created, true);
    assert.equal((await client.save({ name: "sdk/writes", template: "Hello there, {{ who }}" })).created, false);
    const history = await client.history({ name: "sdk/writes" });
    assert.deepEqual(history.map((v) => v.version), [2, 1]);
    assert.equal(history[0].message, "warmer");
    const diff = await client.diff({ name: "sdk/writes", fromVersion: 1, toVersion: 2 });
    assert.equal(diff.added, 1);
    assert.match(diff.unified, /\+Hello there, \{\{ who \}\}/);
    const moved = await client.setLabel({ name: "sdk/writes", label: "beta", version: 1 });
    assert.deepEqual([moved.label, moved.to_version], ["beta", 1]);
    assert.equal((await client.getPrompt({ name: "sdk/writes", label: "beta" })).version, 1);
    const deployed = await client.deploy({ name: "sdk/writes", version: 2, force: true, reason: "sdk test" });
    assert.equal(deployed.status, "deployed");
    assert.equal((await client.getPrompt({ name: "sdk/writes" })).version, 2);
    await assert.rejects(client.run({ name: "sdk/writes" }),
      (err) => err.status === 400 && err.type === "InvalidInput" && /'who'/.test(err.message));
    await assert.rejects(client.history({ name: "sdk/nothing" }),
      (err) => err.status === 404 && err.type === "NotFound" && /sdk\/nothing/.test(err.message));
    await assert.rejects(client.diff({ name: "sdk/writes", fromVersion: 9 }),
      (err) => err.status === 404 && err.type === "NotFound" && /no version 9/.test(err.message));
    await assert.rejects(client.setLabel({ name: "sdk/writes", label: "beta", version: 0 }),
      (err) => err.status === 422 && err.type === "ValidationError" && err.field === "version");
  });
});

describe("logCall", () => {
  async function apiRows(url) {
    const rows = await (await fetch(`${url}/api/v1/calls?limit=0`)).json();
    return rows.filter((r) => r.source === "api");
  }

  test("calls are queued, sent in batches, priced, and a resent id is stored once", async () => {
    const client = new PromStack({ baseUrl });
    const began = Date.now();
    const ids = [];
    for (let i = 0; i < 150; i++) {
      ids.push(client.logCall({ model: "gpt-4o-mini", promptId: 42, promptVersion: 2, inputTokens: 100,
        outputTokens: 10, latencyMs: 250, userId: `u${i % 3}` }));
    }
    assert.ok(Date.now() - began < 200, "logCall never waits on the network");
    client.logCall({ model: "gpt-4o-mini", callId: ids[0] }); // the same call again: stored once
    client.logCall({ model: "gpt-4o-mini", latencyMs: -5 }); // refused by the server: counted
    assert.equal(await client.flush(20000), true);
    assert.equal(client.reporter.sent, 151);
    assert.equal(client.reporter.rejected, 1);
    const rows = await apiRows(baseUrl);
    const mine = rows.filter((r) => ids.includes(r.call_id.slice(4)));
    assert.equal(mine.length, 150);
    assert.equal(mine[0].prompt_name, "support/answer");
    assert.ok(mine[0].cost_usd > 0);
    await client.close();
  });

  test("the server down then up: queued calls arrive; a tiny queue drops and counts", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const client = new PromStack({ baseUrl: url });
    client.reporterOptions = { backoffMs: 50, maxBackoffMs: 300 };
    const tiny = new PromStack({ baseUrl: url });
    tiny.reporterOptions = { maxQueue: 5, batch: 5, backoffMs: 50, maxBackoffMs: 300 };
    for (let i = 0; i < 20; i++) {
      client.logCall({ model: "gpt-4o-mini", callId: `ts-down-${i}` });
      tiny.logCall({ model: "gpt-4o-mini", callId: `ts-tiny-${i}` });
    }
    assert.equal(await client.flush(500), false);
    assert.ok(tiny.reporter.dropped >= 10, `dropped ${tiny.reporter.dropped}`);
    await serve({}, port);
    assert.equal(await client.flush(30000), true);
    assert.equal(await tiny.flush(30000), true);
    assert.equal(client.reporter.sent, 20);
    const rows = await apiRows(url);
    assert.equal(rows.filter((r) => r.call_id.startsWith("api-ts-down-")).length, 20);
    const tinyStored = rows.filter((r) => r.call_id.startsWith("api-ts-tiny-")).length;
    assert.equal(tinyStored + tiny.reporter.dropped, 20);
    await client.close();
    await tiny.close();
  });
});
