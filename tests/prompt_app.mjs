// tests/prompt_app.py's twin for the TypeScript SDK: reads prompts in a loop from a team server
// (label production, and staging per user) and measures every call; `ready` after the first
// reads, `phase NAME` / `stop` on stdin, one JSON line at the end (the same shape).
//
//   node tests/prompt_app.mjs URL [--ttl 0.2] [--retry 0.5] [--users 50]
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";

const sdk = process.env.PROMSTACK_SDK ?? new URL("../sdk/typescript/index.js", import.meta.url).href;
const { PromStack } = await import(sdk);

const args = process.argv.slice(2);
const option = (name, value) => { const at = args.indexOf(name); return at >= 0 ? Number(args[at + 1]) : value; };
const url = args[0];
const ttl = option("--ttl", 0.2);
const users = Array.from({ length: option("--users", 50) }, (_, i) => `user-${i}`);

const client = new PromStack({ baseUrl: url, cacheTtlMs: ttl * 1000 });
client.prompts.retryMs = option("--retry", 0.5) * 1000;
const began = performance.now();
await client.getPrompt({ name: "support/answer", label: "production" });
await client.getPrompt({ name: "support/answer", label: "staging", userId: users[0] });
const first = (performance.now() - began) / 1000;

let phase = "start"; // until stdin names one
let stop = false;
createInterface({ input: process.stdin }).on("line", (line) => {
  const [word, name] = line.trim().split(" ");
  if (word === "phase") phase = name;
  if (word === "stop") stop = true;
}).on("close", () => { stop = true; });
console.log("ready");

const durations = {};
const served = {};
const failed = {};
const errors = [];
const versions = {};
// a pause between reads (as an app does other work), and the event loop's turn: stdin, refreshes
const tick = () => new Promise((ok) => setTimeout(ok, 1));
for (let i = 0; !stop; i++) {
  const user = users[Math.floor(i / 2) % users.length];
  const label = i % 2 ? "staging" : "production";
  const name = phase;
  const t0 = performance.now();
  try {
    const found = await client.getPrompt({ name: "support/answer", label, userId: label === "staging" ? user : undefined });
    (durations[name] ??= []).push((performance.now() - t0) / 1000);
    served[name] ??= {};
    served[name][found.servedFrom] = (served[name][found.servedFrom] ?? 0) + 1;
    if (label === "staging") (versions[user] ??= new Set()).add(found.version);
  } catch (err) {
    (durations[name] ??= []).push((performance.now() - t0) / 1000);
    failed[name] = (failed[name] ?? 0) + 1;
    if (errors.length < 5) errors.push(`${err?.name}: ${err?.message}`);
  }
  await tick();
}

const summary = (values) => {
  const ordered = [...values].sort((a, b) => a - b);
  return { p50: ordered[Math.floor(ordered.length / 2)], p95: ordered[Math.max(0, Math.floor(ordered.length * 0.95) - 1)],
    max: ordered[ordered.length - 1] };
};
console.log(JSON.stringify({
  first_read_s: first,
  phases: Object.fromEntries(Object.entries(durations).map(([name, values]) => [name,
    { calls: values.length, failed: failed[name] ?? 0, served: served[name] ?? {}, ...summary(values) }])),
  errors,
  versions: Object.fromEntries(Object.entries(versions).map(([u, v]) => [u, [...v].sort((a, b) => a - b)])),
}));
process.exit(0);
