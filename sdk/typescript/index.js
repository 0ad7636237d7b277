// PromStack's TypeScript SDK: prompts from a PromStack server's REST API, rendered locally.
// No runtime dependencies: fetch (Node 18+, browsers, Deno, Bun). Types: index.d.ts.
//
//   import { PromStack } from "promstack";
//   const client = new PromStack({ baseUrl: "http://127.0.0.1:8787", token: process.env.PROMSTACK_TOKEN });
//   const prompt = await client.getPrompt({ id: 42, version: 3 });
//   const text = prompt.render({ input: "환불하고 싶어요" });
//
// Labels, A/B arms and rollouts are resolved by the server (the same code as the Python SDK);
// this client only caches what it fetched for a few seconds, so it can be called per request.

const DEFAULT_BASE_URL = "http://127.0.0.1:8787";
const DEFAULT_TTL_MS = 5000;

export class PromStackError extends Error {
  constructor(message, status = 0) {
    super(message);
    this.name = "PromStackError";
    this.status = status;
  }
}

export class Prompt {
  constructor(data) {
    Object.assign(this, data);
    Object.freeze(this);
  }

  render(variables = {}) {
    return render(this.template, variables);
  }
}

export class PromStack {
  constructor({ baseUrl = DEFAULT_BASE_URL, token, cacheTtlMs = DEFAULT_TTL_MS, fetch: fetchImpl } = {}) {
    this.baseUrl = String(baseUrl).replace(/\/+$/, "");
    this.token = token;
    this.cacheTtlMs = cacheTtlMs;
    this._fetch = fetchImpl ?? globalThis.fetch;
    if (typeof this._fetch !== "function") {
      throw new PromStackError("no fetch() here: use Node 18 or later, or pass { fetch }");
    }
    this._cache = new Map();
  }

  async getPrompt(options = {}) {
    const { id, name, version, label, branch, userId } = options;
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
    const ref = id !== undefined ? String(id) : String(name).split("/").map(encodeURIComponent).join("/");
    const query = new URLSearchParams();
    if (version !== undefined) query.set("version", String(version));
    if (label !== undefined) query.set("label", label);
    if (branch !== undefined) query.set("branch", branch);
    if (userId !== undefined && userId !== null) query.set("user_id", String(userId));
    const qs = query.toString();
    const path = `/api/prompts/${ref}${qs ? `?${qs}` : ""}`;
    return new Prompt(await this._get(path, true));
  }

  async listPrompts() {
    return (await this._get("/api/prompts", false)).prompts;
  }

  clearCache() {
    this._cache.clear();
  }

  async _get(path, cacheable) {
    const now = Date.now();
    if (cacheable && this.cacheTtlMs > 0) {
      const hit = this._cache.get(path);
      if (hit && hit.expires > now) return hit.value;
    }
    const headers = { Accept: "application/json" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    let response;
    try {
      response = await this._fetch(this.baseUrl + path, { headers });
    } catch (err) {
      throw new PromStackError(`could not reach PromStack at ${this.baseUrl}: ${err?.message ?? err}`);
    }
    const text = await response.text();
    let body;
    try {
      body = text ? JSON.parse(text) : {};
    } catch {
      body = { error: text.trim() || response.statusText };
    }
    if (!response.ok) {
      throw new PromStackError(body?.error ?? `PromStack answered ${response.status}`, response.status);
    }
    if (cacheable && this.cacheTtlMs > 0) {
      this._cache.set(path, { value: body, expires: now + this.cacheTtlMs });
      if (this._cache.size > 1000) this._cache.delete(this._cache.keys().next().value);
    }
    return body;
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
