// PromStack's TypeScript SDK: prompts from a PromStack server's REST API, rendered locally.
// No runtime dependencies: fetch (Node 18+, browsers, Deno, Bun). Types: index.d.ts.
//
//   import { PromStack } from "promstack";
//   const client = new PromStack({ baseUrl: "http://127.0.0.1:8787", token: process.env.PROMSTACK_TOKEN });
//   const prompt = await client.getPrompt({ id: 42, version: 3 });
//   const text = prompt.render({ input: "환불하고 싶어요" });
//
// A label's state (its version, A/B test or rollout) comes from the server and is cached
// (prompt-cache.js): past cacheTtlMs the copy is served while one background refresh runs, the
// last good copy is kept on disk (Node), and `fallback` covers a prompt never fetched while the
// server is away; `prompt.servedFrom` says which. A user's arm is picked with the server's hash.

import { PromStackError } from "./errors.js";
import { Outage, PromptCache } from "./prompt-cache.js";

export { PromStackError };

const DEFAULT_BASE_URL = "http://127.0.0.1:8787";
const DEFAULT_TTL_MS = 30000;

function promptPath(options, sub) {
  const { id, name } = options;
  if ((id === undefined) === (name === undefined)) {
    throw new PromStackError("say which prompt: { id: 42 } or { name: 'support/refund' }, one of them");
  }
  const ref = id !== undefined ? String(id) : String(name).split("/").map(encodeURIComponent).join("/");
  return `/api/v1/prompts/${ref}/-/${sub}`;
}

function dropUndefined(body) {
  return Object.fromEntries(Object.entries(body).filter(([, v]) => v !== undefined && v !== null));
}

export class Prompt {
  constructor(data) {
    Object.assign(this, data);
    Object.freeze(this);
  }

  /** The same prompt with the A/B arm or rollout share a user fell in. */
  withResolved(resolved) {
    return new Prompt({ ...this, resolved });
  }

  render(variables = {}) {
    return render(this.template, variables);
  }
}

export class PromStack {
  constructor({ baseUrl = DEFAULT_BASE_URL, token, cacheTtlMs = DEFAULT_TTL_MS, cacheDir, logger = console,
    fetch: fetchImpl } = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.token = token;
    this.cacheTtlMs = cacheTtlMs;
    this._fetch = fetchImpl ?? globalThis.fetch;
    if (typeof this._fetch !== "function") {
      throw new PromStackError("no fetch() here: use Node 18 or later, or pass { fetch }");
    }
    this._versions = new Map(); // "promptId:version" -> its body: a version never changes
    this.prompts = new PromptCache({
      fetchState: (prompt, label) => this._serving(prompt, label),
      fetchVersion: (prompt, version) => this._versionBody(prompt, version),
      makePrompt: (body, servedFrom, label) => new Prompt({
        ...body, id: body.id ?? body.prompt_id, model_config: body.model_config ?? body.config ?? {},
        source_template: body.source_template ?? body.template, label: label ?? null, resolved: null, servedFrom,
      }),
      scope: this.baseUrl, ttlMs: cacheTtlMs, directory: cacheDir, logger,
    });
    this._reporter = null;
    this.reporterOptions = {};
  }

  // ---- calls the app made itself, reported to the server's call log (POST /api/v1/calls) ----
  // Queued in memory (bounded: a full queue drops the call, counted), sent in batches in the
  // background, retried with backoff while the server is away, dropped (counted) after giveUpMs.
  // Never throws at the caller and never waits on the network; flush()/close() drain.

  logCall(call) {
    if (!call || typeof call !== "object") throw new PromStackError("logCall({ model, ... }): a call is an object");
    if (!call.model) throw new PromStackError("logCall needs the model called: logCall({ model: 'gpt-4o-mini', ... })");
    const row = dropUndefined({
      model: call.model, prompt_id: call.promptId ?? call.prompt, prompt_version: call.promptVersion,
      input_tokens: call.inputTokens, output_tokens: call.outputTokens, latency_ms: call.latencyMs,
      user_id: call.userId, status: call.status, error: call.error,
      timestamp: call.timestamp instanceof Date ? call.timestamp.toISOString() : call.timestamp ?? Date.now() / 1000,
      cost_usd: call.costUsd, provider: call.provider, operation: call.operation, environment: call.environment,
      call_id: call.callId ?? randomId(),
    });
    this.reporter.put(row);
    return row.call_id;
  }

  get reporter() {
    if (this._reporter === null) {
      this._reporter = new CallReporter((batch) => this._sendCalls(batch), this.reporterOptions);
    }
    return this._reporter;
  }

  async _sendCalls(batch) {
    const headers = { Accept: "application/json", "Content-Type": "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await this._fetch(this.baseUrl + "/api/v1/calls", {
        method: "POST", headers, body: JSON.stringify({ calls: batch }),
      });
    } catch (err) {
      throw new Transient(`could not reach PromStack at ${this.baseUrl}: ${err?.message ?? err}`);
    }
    const text = await response.text();
    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      throw new Transient(`PromStack answered ${response.status}`);
    }
    const body = text ? JSON.parse(text) : {};
    if (!response.ok) throw new PromStackError(body?.error?.message ?? `PromStack answered ${response.status}`, response.status);
    return body;
  }

  async flush(timeoutMs) {
    return this._reporter === null ? true : this._reporter.flush(timeoutMs);
  }

  async close(timeoutMs = 10000) {
    if (this._reporter !== null) await this._reporter.close(timeoutMs);
  }

  async getPrompt(options = {}) {
    const { id, name, version, label, branch, userId, fallback } = options;
    if (id === undefined && name === undefined) {
      throw new PromStackError("say which prompt: getPrompt({ id: 42 }) or getPrompt({ name: 'support/refund' })");
    }
    if (id !== undefined && name !== undefined) {
      throw new PromStackError("give the prompt's id or its name, not both");
    }
    if (id !== undefined && !(Number.isInteger(id) && id >= 1)) {
      throw new PromStackError(`a prompt id is a whole number from 1; got ${JSON.stringify(id)}`);
    }
    const given = ["version", "label", "branch"].filter((k) => options[k] !== undefined && options[k] !== null);
    if (given.length > 1) {
      throw new PromStackError(`give one of version, label or branch, not ${given.join(" and ")}`, 400);
    }
    if (version !== undefined && !(Number.isInteger(version) && version >= 1)) {
      throw new PromStackError(`a version is a whole number from 1; got ${JSON.stringify(version)}`);
    }
    if (branch === undefined || branch === null) {
      // a label (production by default) or a version: from the cache, never failing while a copy exists
      const selector = version !== undefined && version !== null ? [null, version] : [label ?? "production", null];
      return this.prompts.get(id ?? String(name), selector[0], selector[1], userId, fallback);
    }
    const ref = id !== undefined ? String(id) : String(name).split("/").map(encodeURIComponent).join("/");
    const query = new URLSearchParams();
    if (version !== undefined) query.set("version", String(version));
    if (label !== undefined) query.set("label", label);
    if (branch !== undefined) query.set("branch", branch);
    if (userId !== undefined && userId !== null) query.set("user_id", String(userId));
    const qs = query.toString();
    const path = `/api/prompts/${ref}${qs ? `?${qs}` : ""}`;
    return new Prompt(await this._get(path)); // a branch's head: the editing view, not kept
  }

  async listPrompts() {
    return (await this._get("/api/prompts")).prompts;
  }

  clearCache() {
    this._versions.clear();
    this.prompts.forget();
  }

  // What the prompt cache keeps: a label's state (its version, A/B test or rollout, and each
  // version it may serve, with includes expanded by the server), or one version. A server that
  // is away throws Outage (the cache serves its copy); an error it answers, PromStackError.
  async _serving(prompt, label) {
    const state = await this._cacheGet(`/api/v1/prompts/${refPath(prompt)}/-/serving?label=${encodeURIComponent(label)}`);
    const versions = await Promise.all(state.versions.map((v) => this._versionBody(state.prompt_id, v.version)));
    return { prompt_id: state.prompt_id, version: state.version, split: state.split, versions };
  }

  async _versionBody(prompt, version) {
    const known = typeof prompt === "number" && this.cacheTtlMs > 0 ? this._versions.get(`${prompt}:${version}`) : undefined;
    if (known !== undefined) return known;
    const body = await this._cacheGet(`/api/prompts/${refPath(prompt)}?version=${version}`);
    this._versions.set(`${body.prompt_id}:${version}`, body);
    return body;
  }

  async _cacheGet(path) {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await this._fetch(this.baseUrl + path, { headers, signal: AbortSignal.timeout(10000) });
    } catch (err) {
      throw new Outage(`could not reach PromStack at ${this.baseUrl}: ${err?.message ?? err}`);
    }
    if (response.status >= 500 || response.status === 429 || response.status === 408) {
      throw new Outage(`PromStack at ${this.baseUrl} answered ${response.status}`);
    }
    return this._body(response);
  }

  // ---- writes and runs over /api/v1 (the same operations and errors as the Python SDK) --------

  /** Run a prompt through the server's gateway (its keys, its call log). */
  async run(options) {
    const { variables = {}, version, label, branch, model, userId } = options;
    return this._send("POST", promptPath(options, "run"),
      dropUndefined({ variables, version, label, branch, model, user_id: userId }));
  }

  /** Save a new version; content equal to the branch head saves none (`created: false`). */
  async save(options) {
    const { template, modelConfig, message, branch } = options;
    const saved = await this._send("POST", promptPath(options, "versions"),
      dropUndefined({ template, model_config: modelConfig, message, branch }));
    this.clearCache();
    return new Prompt(saved);
  }

  /** Point a label at a version; an environment's label moves only through its gate. */
  async setLabel(options) {
    const { label, version, reason, force } = options;
    if (!label) throw new PromStackError("say which label: setLabel({ id: 42, label: 'beta', version: 3 })");
    const moved = await this._send("PUT", promptPath(options, `labels/${encodeURIComponent(label)}`),
      dropUndefined({ version, reason, force }));
    this.clearCache();
    return moved;
  }

  /** Deploy a version to an environment (default production) through its gate, or roll it back.
   *  A refused deploy throws with `type` "GateFailed" and the `deployment` (its checks). */
  async deploy(options) {
    const { version, environment, force, reason, rollback } = options;
    const done = await this._send("POST", promptPath(options, "deploy"),
      dropUndefined({ version, environment, force, reason, rollback }));
    this.clearCache();
    return done;
  }

  /** Versions, newest first. */
  async history(options) {
    const { branch, limit } = options;
    const query = new URLSearchParams(dropUndefined({ branch, limit: limit === undefined ? undefined : String(limit) }));
    const qs = query.toString();
    return (await this._send("GET", promptPath(options, "history") + (qs ? `?${qs}` : ""))).versions;
  }

  /** Two versions compared: `unified`, `added`, `removed`, `config_changes` (toVersion: main's head). */
  async diff(options) {
    const { fromVersion, toVersion } = options;
    if (!(Number.isInteger(fromVersion) && fromVersion >= 1)) {
      throw new PromStackError(`fromVersion is a whole number from 1; got ${JSON.stringify(fromVersion)}`);
    }
    const query = new URLSearchParams({ from_version: String(fromVersion) });
    if (toVersion !== undefined) query.set("to_version", String(toVersion));
    return this._send("GET", promptPath(options, "diff") + `?${query}`);
  }

  async _send(method, path, body) {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return this._answer(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  }

  async _get(path) {
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    return this._answer(path, { headers });
  }

  async _answer(path, init) {
    let response;
    try {
      response = await this._fetch(this.baseUrl + path, init);
    } catch (err) {
      throw new PromStackError(`could not reach PromStack at ${this.baseUrl}: ${err?.message ?? err}`);
    }
    return this._body(response);
  }

  async _body(response) {
    let text;
    try {
      text = await response.text();
    } catch (err) {
      throw new Outage(`PromStack at ${this.baseUrl} stopped answering: ${err?.message ?? err}`);
    }
    let body;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { error: text.trim() || response.statusText };
    }
    if (!response.ok) {
      // /api/v1 answers {error: {type, message, ...}}; the older /api/prompts {error: "..."}.
      const error = body?.error;
      if (error && typeof error === "object") {
        const { type = null, message, ...details } = error;
        throw new PromStackError(message ?? `PromStack answered ${response.status}`, response.status, type, details);
      }
      throw new PromStackError(error ?? `PromStack answered ${response.status}`, response.status);
    }
    return body;
  }
}

function refPath(prompt) {
  return typeof prompt === "number" ? String(prompt) : String(prompt).split("/").map(encodeURIComponent).join("/");
}

// ---- reported calls: the bounded queue and its sender -----------------------------------------

class Transient extends Error {}

function randomId() {
  const bytes = new Uint8Array(12);
  globalThis.crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const sleep = (ms) => new Promise((ok) => { const t = setTimeout(ok, ms); t.unref?.(); });

export class CallReporter {
  constructor(send, { maxQueue = 10000, batch = 100, intervalMs = 200, giveUpMs = 60000, backoffMs = 100,
    maxBackoffMs = 5000 } = {}) {
    this._send = send;
    Object.assign(this, { maxQueue, batch, intervalMs, giveUpMs, backoffMs, maxBackoffMs });
    this._queue = [];
    this._inFlight = 0;
    this._running = false;
    this._closed = false;
    this._waiters = [];
    this.sent = 0;      // stored by the server (a resent row counted again)
    this.dropped = 0;   // never stored: the queue was full, or the server stayed away
    this.rejected = 0;  // refused by the server (a bad row)
    this.lastError = null;
  }

  put(row) {
    if (this._closed || this._queue.length >= this.maxQueue) {
      this.dropped += 1;
      return false;
    }
    this._queue.push(row);
    if (!this._running) {
      this._running = true;
      const t = setTimeout(() => this._drain(), this._queue.length >= this.batch ? 0 : this.intervalMs);
      t.unref?.();
    }
    return true;
  }

  pending() {
    return this._queue.length + this._inFlight;
  }

  async _drain() {
    while (this._queue.length > 0) {
      const batch = this._queue.splice(0, this.batch);
      this._inFlight = batch.length;
      await this._deliver(batch);
      this._inFlight = 0;
    }
    this._running = false;
    for (const wake of this._waiters.splice(0)) wake();
  }

  async _deliver(batch) {
    const began = Date.now();
    for (let attempt = 0; ; attempt++) {
      try {
        const answer = await this._send(batch);
        const rejected = answer?.rejected ?? [];
        this.rejected += rejected.length;
        this.sent += batch.length - rejected.length;
        return;
      } catch (err) {
        this.lastError = err;
        const wait = Math.min(this.maxBackoffMs, this.backoffMs * 2 ** attempt);
        if (!(err instanceof Transient) || this._closed || Date.now() - began + wait > this.giveUpMs) {
          this.dropped += batch.length;
          return;
        }
        await sleep(wait);
      }
    }
  }

  flush(timeoutMs) {
    if (this.pending() === 0) return Promise.resolve(true);
    return new Promise((ok) => {
      let timer = null;
      const done = () => { if (timer) clearTimeout(timer); ok(true); };
      this._waiters.push(done);
      if (timeoutMs !== undefined) {
        timer = setTimeout(() => {
          this._waiters = this._waiters.filter((w) => w !== done);
          ok(this.pending() === 0);
        }, timeoutMs);
      }
    });
  }

  async close(timeoutMs = 10000) {
    const drained = await this.flush(timeoutMs);
    this._closed = true;
    if (!drained) {
      this.dropped += this._queue.length;
      this._queue.length = 0;
    }
    return drained;
  }
}

// ---- rendering: the {{ variable }} subset of Jinja ------------------------------------------

const TAG = /\{\{(-?)([\s\S]*?)(-?)\}\}|\{#[\s\S]*?#\}|\{%/g;
const FILTERS = {
  default: (value, args, missing) => {
    const [fallback = "", boolean = false] = args;
    return missing || (boolean && !value) ? fallback : value;
  },
  upper: (value) => show(value).toUpperCase(),
  lower: (value) => show(value).toLowerCase(),
  trim: (value) => show(value).trim(),
  length: (value) => (value == null ? 0 : typeof value === "object" && !Array.isArray(value) ? Object.keys(value).length : value.length),
};

export function render(template, variables = {}) {
  if (Array.isArray(template)) {
    return template.map((m) => ({ ...m, content: render(m.content, variables) }));
  }
  if (typeof template !== "string") {
    throw new PromStackError("a template is text or a list of chat messages");
  }
  let out = "";
  let last = 0;
  let trimNext = false;
  for (const match of template.matchAll(TAG)) {
    if (match[0] === "{%") {
      const line = template.slice(0, match.index).split("\n").length;
      const tag = template.slice(match.index, template.indexOf("%}", match.index) + 2 || undefined);
      throw new PromStackError(
        `line ${line}: ${tag} is Jinja the TypeScript renderer does not do (it renders {{ variables }} and ` +
          "the default/upper/lower/trim/length filters); render this prompt in Python",
      );
    }
    let chunk = template.slice(last, match.index);
    if (trimNext) chunk = chunk.replace(/^\s+/, "");
    if (match[1] === "-") chunk = chunk.replace(/\s+$/, "");
    out += chunk;
    last = match.index + match[0].length;
    trimNext = match[3] === "-";
    if (match[0].startsWith("{#")) continue;
    out += show(evaluate(match[2].trim(), variables));
  }
  let rest = template.slice(last);
  if (trimNext) rest = rest.replace(/^\s+/, "");
  return out + rest;
}

function show(value) {
  if (value === null || value === undefined) return "None";
  if (value === true) return "True";
  if (value === false) return "False";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

function evaluate(expression, variables) {
  const [head, ...filters] = splitPipes(expression);
  let { value, missing, path } = lookup(head.trim(), variables);
  for (const filter of filters) {
    const found = /^\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*$/s.exec(filter);
    if (!found || !(found[1] in FILTERS)) {
      throw new PromStackError(`{{ ${expression} }}: the filter '${filter.trim()}' is not one the TypeScript renderer knows (default, upper, lower, trim, length)`);
    }
    if (missing && found[1] !== "default") break;
    value = FILTERS[found[1]](value, parseArgs(found[2] ?? "", expression), missing);
    missing = false;
  }
  if (missing) {
    throw new PromStackError(`the template needs the variable '${path}'; pass it to render()`);
  }
  return value;
}

function splitPipes(expression) {
  const parts = [];
  let current = "";
  let quote = null;
  for (const ch of expression) {
    if (quote) {
      if (ch === quote) quote = null;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
    } else if (ch === "|") {
      parts.push(current);
      current = "";
      continue;
    }
    current += ch;
  }
  parts.push(current);
  return parts;
}

function lookup(path, variables) {
  if (!/^[A-Za-z_]\w*(\.[A-Za-z_]\w*|\[\d+\]|\[(["'])[^"']*\2\])*$/.test(path)) {
    throw new PromStackError(`{{ ${path} }} is not a variable the TypeScript renderer can read (name, name.attr, name[0])`);
  }
  const keys = [...path.matchAll(/([A-Za-z_]\w*)|\[(\d+)\]|\[(["'])([^"']*)\3\]/g)].map((m) => m[1] ?? m[4] ?? Number(m[2]));
  let value = variables;
  for (const key of keys) {
    if (value === null || value === undefined || typeof value !== "object" || !(key in value)) {
      return { value: undefined, missing: true, path };
    }
    value = value[key];
  }
  return { value, missing: value === undefined, path };
}

function parseArgs(text, expression) {
  const args = [];
  const re = /\s*(?:"((?:[^"\\]|\\.)*)"|'((?:[^'\\]|\\.)*)'|(-?\d+(?:\.\d+)?)|(true|false|True|False))\s*(?:,|$)/gy;
  let match;
  let consumed = 0;
  while (consumed < text.length && (match = re.exec(text)) !== null) {
    if (match[0] === "") break;
    consumed = re.lastIndex;
    if (match[1] !== undefined) args.push(match[1].replace(/\\(.)/g, "$1"));
    else if (match[2] !== undefined) args.push(match[2].replace(/\\(.)/g, "$1"));
    else if (match[3] !== undefined) args.push(Number(match[3]));
    else args.push(/^t/i.test(match[4]));
  }
  if (text.trim() && consumed < text.length) {
    throw new PromStackError(`{{ ${expression} }}: filter arguments must be strings, numbers or booleans`);
  }
  return args;
}

export default PromStack;
