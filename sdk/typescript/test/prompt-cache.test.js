// Prompts that never fail to load, against a real `promstack serve`: the label's state cached with
// each user's arm picked here as the server picks it, stale-while-revalidate, the last good copy
// on disk for a process that starts while the server is down, and the fallback.
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

import { PromStack, PromStackError } from "../index.js";

const here = dirname(fileURLToPath(import.meta.url));
const repo = resolve(here, "../../..");
const venvBin = join(repo, ".venv", "bin", "promstack");
const BIN = process.env.PROMSTACK_BIN ?? (existsSync(venvBin) ? venvBin : "promstack");

let tmp;
let db;
let server;
let port;
let baseUrl;

function env() {
  const found = { ...process.env, PROMSTACK_USER: "sdk-test" };
  delete found.PROMSTACK_DB;
  delete found.PROMSTACK_TOKEN;
  return found;
}

function cli(...args) {
  return execFileSync(BIN, [...args, "--db", db], { cwd: tmp, env: env(), encoding: "utf8" });
}

function freePort() {
  return new Promise((ok, fail) => {
    const probe = createServer();
    probe.once("error", fail);
    probe.listen(0, "127.0.0.1", () => {
      const found = probe.address().port;
      probe.close(() => ok(found));
    });
  });
}

async function serve() {
  const child = spawn(BIN, ["serve", "--port", String(port), "--db", db, "--no-watch"],
    { cwd: tmp, env: env(), stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (chunk) => { stderr += chunk; });
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) throw new Error(`promstack serve exited: ${stderr}`);
    try {
      if ((await fetch(`${baseUrl}/healthz`)).ok) return child;
    } catch { /* not up yet */ }
    await new Promise((ok) => setTimeout(ok, 100));
  }
  throw new Error(`promstack serve did not come up: ${stderr}`);
}

async function stop(child) {
  const gone = new Promise((ok) => child.once("exit", ok));
  child.kill("SIGKILL");
  await gone;
}

const quiet = { warn: () => {} };

function recording() {
  const said = [];
  return { said, logger: { warn: (m) => said.push(m) } };
}

async function eventually(check, timeoutMs = 10000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = await check();
    if (found || Date.now() > deadline) return found;
    await new Promise((ok) => setTimeout(ok, 20));
  }
}

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), "promstack-cache-"));
  db = join(tmp, ".promstack", "promstack.db");
  process.env.PROMSTACK_CACHE_DIR = join(tmp, "prompt-cache"); // last good copies: not in ~/.cache
  execFileSync(BIN, ["init"], { cwd: tmp, env: env() });
  cli("import", join(repo, "examples", "workspace.json"), "--force", "--reason", "the examples");
  // The server's own label cache off: a label moved is served at once.
  writeFileSync(join(tmp, ".promstack", "config.toml"), "[deploy]\ncache_ttl = 0\n");
  port = await freePort();
  baseUrl = `http://127.0.0.1:${port}`;
  server = await serve();
});

after(async () => {
  if (server.exitCode === null) await stop(server);
  rmSync(tmp, { recursive: true, force: true });
});

describe("the prompt cache", () => {
  test("a label read is served from memory, then stale while one refresh runs", async () => {
    let calls = 0;
    const counting = (...args) => { calls += 1; return fetch(...args); };
    const client = new PromStack({ baseUrl, fetch: counting, cacheTtlMs: 300, cacheDir: join(tmp, "c1"), logger: quiet });
    const first = await client.getPrompt({ id: 42, label: "production" });
    assert.deepEqual([first.version, first.servedFrom], [2, "fresh"]);
    const asked = calls;
    for (let i = 0; i < 100; i++) assert.equal(await client.getPrompt({ id: 42, label: "production" }), first);
    assert.equal(calls, asked, "a cached read asks nothing");
    cli("label", "set", "42", "production", "1", "--force", "--reason", "cache test");
    await new Promise((ok) => setTimeout(ok, 350));
    const old = await client.getPrompt({ id: 42, label: "production" });
    assert.deepEqual([old.version, old.servedFrom], [2, "stale"]);
    const fresh = await eventually(async () => {
      const p = await client.getPrompt({ id: 42, label: "production" });
      return p.servedFrom === "fresh" && p;
    });
    assert.equal(fresh.version, 1);
    cli("label", "set", "42", "production", "2", "--force", "--reason", "cache test");
  });

  test("each user's A/B arm is picked here, as the server picks it", async () => {
    cli("ab", "start", "--prompt", "42", "--a", "3", "--b", "1", "--split", "40", "--force", "--reason", "cache test");
    try {
      let calls = 0;
      const counting = (...args) => { calls += 1; return fetch(...args); };
      const client = new PromStack({ baseUrl, fetch: counting, cacheDir: join(tmp, "c2"), logger: quiet });
      const seen = new Set();
      for (let i = 0; i < 80; i++) {
        const mine = await client.getPrompt({ id: 42, label: "staging", userId: `user_${i}` });
        const theirs = await (await fetch(`${baseUrl}/api/prompts/42?label=staging&user_id=user_${i}`)).json();
        assert.equal(mine.version, theirs.version);
        assert.deepEqual(mine.resolved, theirs.resolved);
        seen.add(mine.version);
      }
      assert.deepEqual([...seen].sort(), [1, 3]);
      assert.ok(calls <= 3, `the label's state and its two versions, once: ${calls} requests`);
    } finally {
      cli("ab", "stop", "--prompt", "42");
    }
  });

  test("a process that starts while the server is down serves the disk copy; a prompt never fetched, the fallback", async () => {
    const dir = join(tmp, "c3");
    const up = new PromStack({ baseUrl, cacheDir: dir, logger: quiet });
    assert.equal((await up.getPrompt({ name: "support/answer" })).version, 2);
    const files = readdirSync(dir);
    assert.equal(files.length, 1);
    assert.equal(statSync(join(dir, files[0])).mode & 0o777, 0o600);
    const kept = readFileSync(join(dir, files[0]), "utf8");
    assert.ok(!kept.includes(baseUrl) && !kept.includes("Bearer"), "the server's answer only");
    await stop(server);
    try {
      const { said, logger } = recording();
      const down = new PromStack({ baseUrl, cacheDir: dir, logger });
      for (let i = 0; i < 20; i++) {
        const p = await down.getPrompt({ name: "support/answer" });
        assert.deepEqual([p.version, p.servedFrom], [2, "disk"]);
        assert.match(p.render({ input: "환불" }), /환불/);
      }
      assert.equal(said.filter((m) => m.includes("kept on disk")).length, 1, "logged once, not per call");
      await assert.rejects(down.getPrompt({ name: "support/refund" }),
        (err) => err instanceof PromStackError && /fallback/.test(err.message));
      const given = await down.getPrompt({ name: "support/refund", fallback: "Refunds: {{ input }}" });
      assert.deepEqual([given.servedFrom, given.render({ input: "x" })], ["fallback", "Refunds: x"]);
    } finally {
      server = await serve();
    }
  });
});
