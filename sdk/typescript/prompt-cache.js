// Prompts that never fail to load: what getPrompt reads by label or version, kept in the
// process, refreshed in the background, and copied to disk (as the Python SDK's
// promstack/prompt_cache.py does, in the same directory).
//
// A prompt comes back with `servedFrom`:
//   "fresh"    fetched less than cacheTtlMs ago
//   "stale"    older; one background refresh is under way, or the server is away
//   "disk"     the last good copy this machine kept (the server was away when the process started)
//   "fallback" the template the caller gave (never fetched, nothing on disk, the server away)
//
// A label's state is cached, not one user's answer: its version, the active A/B test or rollout
// (arms, share, the salt users are hashed with; GET /api/v1/prompts/{p}/-/serving) and every
// version it may serve. A user's arm is picked here with the server's hash, so a new user costs
// no request. Versions are immutable: fetched once (with their includes expanded by the server).
// Each change of state is logged once per prompt, not per call.

import { PromStackError } from "./errors.js";

const RETRY_MS = 5000;
const ARMS_KEPT = 100_000;

/** The server did not answer (unreachable, timed out, 5xx, 429): a copy is served instead. */
export class Outage extends PromStackError {}

/** Where a user falls in [0, 100) for a split: sha256(salt \0 user) as the server computes it. */
export async function bucket(salt, userId) {
  const data = new TextEncoder().encode(`${salt}\u0000${userId}`);
  const digest = new DataView(await globalThis.crypto.subtle.digest("SHA-256", data));
  return Number(digest.getBigUint64(0, false)) / 2 ** 64 * 100;
}

/** [version, arm] a label serves `userId` (promstack.deploy.resolver.pick, the same rule). */
export async function pick(version, split, userId) {
  if (!split) return [version, null];
  const inB = userId !== undefined && userId !== null && (await bucket(split.salt, String(userId))) < split.percent;
  if (split.kind === "ab") {
    if ((userId === undefined || userId === null) && version !== null && version !== undefined) return [version, null];
    const arm = inB ? "b" : "a";
    return [split[`version_${arm}`], arm];
  }
  return inB ? [split.version_b, "new"] : [split.version_a, "stable"];
}

// ---- the disk copy (Node only: elsewhere the cache lives in memory alone) ---------------------

async function nodeModules() {
  if (typeof process === "undefined" || !process.versions?.node) return null;
  const [fs, path, os, crypto] = await Promise.all([
    import("node:fs/promises"), import("node:path"), import("node:os"), import("node:crypto")]);
  return { fs, path, os, crypto };
}

/** The user's cache directory for promstack, as Python's platformdirs names it. */
export function defaultCacheDir(node) {
  if (process.env.PROMSTACK_CACHE_DIR) return process.env.PROMSTACK_CACHE_DIR;
  const home = node.os.homedir();
  if (process.platform === "darwin") return node.path.join(home, "Library", "Caches", "promstack");
  if (process.platform === "win32") {
    const local = process.env.LOCALAPPDATA ?? node.path.join(home, "AppData", "Local");
    return node.path.join(local, "promstack", "promstack", "Cache");
  }
  return node.path.join(process.env.XDG_CACHE_HOME || node.path.join(home, ".cache"), "promstack");
}

// Python's json.dumps of a list of scalars (", " between items, non-ASCII as \uXXXX): a copy's
// file is named as the Python SDK names its own, plus "expanded": this SDK's copies hold templates
// with their includes expanded by the server (it renders no includes), the Python SDK's do not.
function pythonJson(values) {
  const one = (v) => (v === undefined || v === null ? "null"
    : JSON.stringify(v).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`));
  return `[${values.map(one).join(", ")}]`;
}

class DiskCopies {
  constructor(directory, scope, log) {
    this.directory = directory; // undefined: the default; false: none
    this.scope = scope;
    this.log = log;
    this._node = undefined;
    this._written = new Map();
  }

  async _where(key) {
    if (this.directory === false) return null;
    if (this._node === undefined) this._node = await nodeModules();
    const node = this._node;
    if (node === null) return null;
    const dir = this.directory ?? defaultCacheDir(node);
    const name = node.crypto.createHash("sha256").update(pythonJson([this.scope, ...key, "expanded"])).digest("hex").slice(0, 40);
    return { node, dir, file: node.path.join(dir, `${name}.json`) };
  }

  async save(key, state) {
    const where = await this._where(key);
    if (where === null) return;
    const text = JSON.stringify({ prompt: key[0], label: key[1], version: key[2], state });
    if (this._written.get(where.file) === text) return;
    const { node, dir, file } = where;
    // written beside it, then renamed over it: a reader sees the old copy or the new one
    const tmp = node.path.join(dir, `.tmp-${process.pid}-${node.crypto.randomBytes(6).toString("hex")}.json`);
    try {
      await node.fs.mkdir(dir, { recursive: true, mode: 0o700 });
      await node.fs.writeFile(tmp, text, { mode: 0o600, flag: "wx" });
      await node.fs.rename(tmp, file);
      this._written.set(file, text);
    } catch (err) {
      await node.fs.rm(tmp, { force: true }).catch(() => {});
      this.log(`prompt ${describe(key)}: could not keep a copy on disk at ${file}: ${err?.message ?? err}`);
    }
  }

  async load(key) {
    const where = await this._where(key);
    if (where === null) return null;
    try {
      const [text, info] = await Promise.all([where.node.fs.readFile(where.file, "utf8"), where.node.fs.stat(where.file)]);
      return { state: JSON.parse(text).state, savedAt: info.mtime.toISOString() };
    } catch (err) {
      if (err?.code !== "ENOENT") this.log(`prompt ${describe(key)}: the copy on disk at ${where.file} is unreadable (${err?.message ?? err}); ignored`);
      return null;
    }
  }
}

function describe(key) {
  const [prompt, label, version] = key;
  return `${JSON.stringify(prompt)} (${label !== null ? `label '${label}'` : `version ${version}`})`;
}

// ---- the cache ----------------------------------------------------------------------------------

class Entry {
  constructor(key, tuple, state, served, origin, expires, savedAt) {
    Object.assign(this, { key, tuple, origin, expires, savedAt });
    this.labelVersion = state.version ?? null;
    this.split = state.split ?? null;
    this.served = served; // servedFrom -> version -> Prompt
    this.oldKind = origin === "server" ? "stale" : origin;
    this.refreshing = false;
    this.retryAt = 0;
    this.arms = new Map(); // user -> [version, arm]: a hash, kept rather than hashed on every read
    this.withArm = new Map();
    this.one = this.split === null ? served.fresh?.get(this.labelVersion) : undefined;
  }

  /** The users' arms from the copy this one replaces, when its split is the same one. */
  keepArms(older) {
    const same = (a, b) => a === b || (a && b && ["id", "salt", "percent", "version_a", "version_b", "kind"]
      .every((k) => a[k] === b[k]));
    if (older.labelVersion === this.labelVersion && same(older.split, this.split)) this.arms = older.arms;
  }

  async forUser(userId, kind) {
    if (this.split === null) return this.served[kind].get(this.labelVersion);
    const id = userId ?? null;
    let found = this.arms.get(id);
    if (found === undefined) {
      found = await pick(this.labelVersion, this.split, id);
      if (this.arms.size < ARMS_KEPT) this.arms.set(id, found);
    }
    const [number, arm] = found;
    const prompt = this.served[kind].get(number);
    if (arm === null) return prompt;
    const name = `${kind}\u0000${number}\u0000${arm}`;
    let armed = this.withArm.get(name);
    if (armed === undefined) {
      armed = prompt.withResolved({ arm, split_id: this.split.id, kind: this.split.kind });
      this.withArm.set(name, armed);
    }
    return armed;
  }
}

export class PromptCache {
  /**
   * fetchState(prompt, label) -> the label's state ({version, split, versions: [body, ...]}),
   * fetchVersion(prompt, n) -> one version's body; both throw Outage when the server is away
   * and its own error when it answers one. makePrompt(body, servedFrom, label) -> a Prompt.
   */
  constructor({ fetchState, fetchVersion, makePrompt, scope, ttlMs, directory, retryMs = RETRY_MS, logger = console }) {
    Object.assign(this, { fetchState, fetchVersion, makePrompt, ttlMs, retryMs });
    this.logger = logger;
    this.entries = new Map();
    this._logged = new Map();
    this.disk = new DiskCopies(directory, scope, (m) => this.logger?.warn?.(m));
  }

  get(prompt, label, version, userId, fallback) {
    const key = `${typeof prompt}:${prompt}\u0000${label}\u0000${version}`;
    const entry = this.entries.get(key);
    if (entry !== undefined) {
      if (Date.now() < entry.expires) return entry.one ? Promise.resolve(entry.one) : entry.forUser(userId, "fresh");
      if (this.ttlMs > 0) return this._old(entry, userId);
      // cacheTtlMs 0: every read asks the server; the copy still covers it being away
    }
    return this._first(key, [prompt, label ?? null, version ?? null], userId, fallback);
  }

  forget() {
    this.entries.clear();
  }

  _old(entry, userId) {
    if (!entry.refreshing && Date.now() >= entry.retryAt) {
      entry.refreshing = true;
      this._refresh(entry); // not awaited: the caller gets the copy now
    }
    return entry.forUser(userId, entry.oldKind);
  }

  async _first(mapKey, key, userId, fallback) {
    let entry;
    try {
      entry = await this._load(mapKey, key);
    } catch (err) {
      if (!(err instanceof Outage)) throw err;
      entry = this.entries.get(mapKey) ?? (await this._fromDisk(mapKey, key)) ?? this._fallback(mapKey, key, fallback);
      if (entry === null) {
        throw new Outage(`${err.message}; prompt ${describe(key)} was never read on this machine and no copy ` +
          "of it is kept on disk (getPrompt({ ..., fallback: '...' }) covers that)");
      }
      entry.retryAt = Date.now() + this.retryMs;
      this.entries.set(mapKey, entry);
      this._note(mapKey, key, entry.oldKind, err.message, entry.savedAt);
      return entry.forUser(userId, entry.oldKind);
    }
    this.entries.set(mapKey, entry);
    this._note(mapKey, key, "fresh");
    return entry.forUser(userId, "fresh");
  }

  async _load(mapKey, key) {
    const [prompt, label, version] = key;
    const state = label !== null
      ? await this.fetchState(prompt, label)
      : { version, split: null, versions: [await this.fetchVersion(prompt, version)] };
    const entry = this._entry(mapKey, key, state, "server");
    await this.disk.save(key, state);
    return entry;
  }

  _entry(mapKey, key, state, origin, savedAt = new Date().toISOString()) {
    const kinds = origin === "server" ? ["fresh", "stale"] : ["fresh", origin];
    const served = {};
    for (const kind of kinds) {
      served[kind] = new Map(state.versions.map((body) => [body.version, this.makePrompt(body, kind, key[1])]));
    }
    const now = Date.now();
    // a version never changes: fresh for good; a label's state for ttlMs
    const expires = origin !== "server" || this.ttlMs <= 0 ? now : key[2] !== null ? Infinity : now + this.ttlMs;
    return new Entry(mapKey, key, state, served, origin, expires, savedAt);
  }

  async _refresh(entry) {
    try {
      const fresh = await this._load(entry.key, entry.tuple);
      fresh.keepArms(entry);
      this.entries.set(entry.key, fresh);
      this._note(entry.key, entry.tuple, "fresh");
    } catch (err) {
      if (err instanceof Outage) {
        entry.retryAt = Date.now() + this.retryMs;
        entry.refreshing = false;
        this._note(entry.key, entry.tuple, entry.oldKind, err.message, entry.savedAt);
        return;
      }
      if (err?.status >= 400 && err?.status < 500) {
        // The server answered, and its answer is an error (the label removed, the token
        // revoked): forget the copy, so the next read asks and throws it.
        this.logger?.warn?.(`prompt ${describe(entry.tuple)}: the server answered ${err.message}; its cached copy is dropped`);
        this.entries.delete(entry.key);
        this._logged.delete(entry.key);
        return;
      }
      this.logger?.warn?.(`prompt ${describe(entry.tuple)}: refreshing it failed (${err?.message ?? err}); the cached copy is served meanwhile`);
      entry.retryAt = Date.now() + this.retryMs;
      entry.refreshing = false;
    }
  }

  async _fromDisk(mapKey, key) {
    const found = await this.disk.load(key);
    if (found === null) return null;
    try {
      return this._entry(mapKey, key, found.state, "disk", found.savedAt);
    } catch (err) {
      this.logger?.warn?.(`prompt ${describe(key)}: the copy on disk is unreadable (${err?.message ?? err}); ignored`);
      return null;
    }
  }

  _fallback(mapKey, key, fallback) {
    if (fallback === undefined || fallback === null) return null;
    const [prompt, , version] = key;
    const body = {
      id: typeof prompt === "number" ? prompt : 0, prompt_id: typeof prompt === "number" ? prompt : 0,
      name: String(prompt), version: version ?? 0, branch: "main", kind: typeof fallback === "string" ? "text" : "chat",
      template: fallback, source_template: fallback, model_config: {}, variables: [], sha256: "", parent: null,
      merge_parent: null, message: "fallback", author: "", source: "fallback", created_at: "",
    };
    return this._entry(mapKey, key, { version: body.version, split: null, versions: [body] }, "fallback");
  }

  _note(mapKey, key, state, reason = "", since = "") {
    const before = this._logged.get(mapKey);
    this._logged.set(mapKey, state);
    if (before === state || (before === undefined && state === "fresh")) return;
    const what = describe(key);
    const say = (m) => this.logger?.warn?.(m);
    if (state === "fresh") say(`prompt ${what}: the server answers again; serving fresh copies`);
    else if (state === "stale") say(`prompt ${what}: ${reason}; serving the copy fetched at ${since} until it answers`);
    else if (state === "disk") say(`prompt ${what}: ${reason}; serving the copy kept on disk since ${since}`);
    else say(`prompt ${what}: ${reason}, and it was never fetched here; serving the fallback given`);
  }
}
