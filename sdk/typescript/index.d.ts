/** PromStack's TypeScript SDK over the REST API of `promstack serve`. */

export interface PromStackOptions {
  /** The server, e.g. "http://127.0.0.1:8787" (the default). */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer <token>` (the server's PROMSTACK_TOKEN). */
  token?: string;
  /** How long a fetched label's state is fresh, in milliseconds (default 30000). Past it the copy
   *  is served (`servedFrom: "stale"`) while one background refresh runs. 0: every read asks the
   *  server (in the foreground), and a copy still covers it being away. */
  cacheTtlMs?: number;
  /** Where the last good copy of each prompt is kept (Node only): default PROMSTACK_CACHE_DIR, else
   *  the user's cache directory (~/.cache/promstack on Linux); `false` keeps none on disk. */
  cacheDir?: string | false;
  /** Where changes of state (serving stale, disk, fallback; fresh again) are told, once each
   *  (default: console). */
  logger?: { warn(message: string): void } | null;
  /** A fetch implementation (default: the global fetch). */
  fetch?: typeof fetch;
}

/** Which version to fetch: `id` or `name`, and at most one of `version`, `label`, `branch`. */
export interface GetPromptOptions {
  id?: number;
  name?: string;
  version?: number;
  /** Default (no version, label or branch): "production". */
  label?: string;
  branch?: string;
  /** With a label: the version this user is served there (A/B arm or rollout share). */
  userId?: string;
  /** The template served when this prompt was never fetched, none is kept on disk and the
   *  server is away (`servedFrom: "fallback"`). */
  fallback?: Template;
}

/** Where a prompt came from: fetched within the TTL, an older copy (a refresh is under way or the
 *  server is away), the copy kept on disk, or the `fallback` given. */
export type ServedFrom = "fresh" | "stale" | "disk" | "fallback";

export type ChatMessage = { role: string; content: string; name?: string };
export type Template = string | ChatMessage[];

export interface Resolved {
  arm: string | null;
  split_id: number | null;
  kind: "ab" | "rollout" | null;
}

export declare class Prompt {
  readonly id: number;
  readonly prompt_id: number;
  readonly name: string;
  readonly version: number;
  readonly branch: string;
  readonly kind: "text" | "chat";
  /** The template with `{% include %}`s expanded by the server. */
  readonly template: Template;
  /** The template as saved. */
  readonly source_template: Template;
  readonly model_config: Record<string, unknown>;
  readonly variables: Array<{ name: string; required?: boolean; default?: unknown; [k: string]: unknown }>;
  readonly sha256: string;
  readonly message: string | null;
  readonly author: string;
  readonly source: string;
  readonly created_at: string;
  /** The label this was resolved through, if any. */
  readonly label: string | null;
  /** The A/B arm or rollout share the user fell in, when one applies. */
  readonly resolved: Resolved | null;
  /** Where this copy came from (label and version reads; absent on branch reads). */
  readonly servedFrom?: ServedFrom;
  /** Fill `{{ variable }}`s (see `render`). */
  render(variables?: Record<string, unknown>): Template;
}

export declare class PromStackError extends Error {
  /** The HTTP status (400 bad input, 401 token, 404 not found), or 0 before any request. */
  readonly status: number;
  /** The server's error class, as the Python SDK raises it: "NotFound", "InvalidInput",
   *  "MergeConflict", "GateFailed", "Unauthorized", "Forbidden", "ValidationError", ... (null
   *  from the older /api/prompts routes and before any request). */
  readonly type: string | null;
  /** With type "GateFailed": the refused deployment and its checks. */
  readonly deployment?: Record<string, unknown>;
}

/** A prompt by `id` or by `name` (one of them). */
export interface PromptRef {
  id?: number;
  name?: string;
}

export interface RunOptions extends PromptRef {
  variables?: Record<string, unknown>;
  version?: number;
  label?: string;
  branch?: string;
  model?: string;
  userId?: string;
}

export interface RunResult {
  output: string;
  model: string;
  prompt_id: number | null;
  prompt_version: number | null;
  input_tokens: number;
  output_tokens: number;
  latency_ms: number;
  cost_usd: number | null;
  cache_hit: boolean;
  status: string;
  call_id: string;
  guards: Record<string, unknown>;
}

export interface SaveOptions extends PromptRef {
  template?: Template;
  modelConfig?: Record<string, unknown>;
  message?: string;
  branch?: string;
}

export interface SetLabelOptions extends PromptRef {
  label: string;
  version: number;
  reason?: string;
  /** Skip an environment's gate (needs a reason; audited). */
  force?: boolean;
}

export interface LabelMove {
  prompt_id: number;
  label: string;
  from_version: number | null;
  to_version: number | null;
  actor: string;
  reason: string | null;
  at: string;
}

export interface DeployOptions extends PromptRef {
  version?: number;
  /** Default: production. */
  environment?: string;
  force?: boolean;
  reason?: string;
  rollback?: boolean;
}

export interface DeployResult {
  status: "deployed" | "pending_approval" | "rolling_out" | "unchanged" | string;
  deployment_id: number | null;
  prompt_id: number;
  name: string;
  environment: string;
  from_version: number | null;
  to_version: number | null;
  forced: boolean;
  checks: Array<{ check: string; passed: boolean; skipped?: boolean; detail: string }>;
  message: string;
}

export interface VersionSummary {
  version: number;
  branch: string;
  parent: number | null;
  merge_parent: number | null;
  message: string | null;
  author: string;
  source: string;
  sha256: string;
  created_at: string;
}

export interface Diff {
  prompt_id: number;
  name: string;
  from_version: number;
  to_version: number;
  unified: string;
  added: number;
  removed: number;
  added_words: number;
  removed_words: number;
  config_changes: Record<string, { from: unknown; to: unknown }>;
  words: Array<[number, string]>;
}

export declare class PromStack {
  constructor(options?: PromStackOptions);
  getPrompt(options: GetPromptOptions): Promise<Prompt>;
  listPrompts(): Promise<Array<Record<string, unknown>>>;
  /** Forget every prompt held in memory (the copies on disk stay). */
  clearCache(): void;
  /** Report a call the app made itself: queued (bounded), sent in batches to POST /api/v1/calls in
   * the background, retried with backoff, dropped (counted) when the server stays away. Never
   * throws for the network, never waits. Returns the call's id (the call log's is `api-<id>`). */
  logCall(call: ReportedCall): string;
  /** The queue logCall fills, with its counts (made on first use; options in `reporterOptions`). */
  readonly reporter: CallReporter;
  reporterOptions: CallReporterOptions;
  /** Wait until the reported calls are sent or dropped; false if `timeoutMs` passed first. */
  flush(timeoutMs?: number): Promise<boolean>;
  /** Drain the reported calls (up to `timeoutMs`), then stop. */
  close(timeoutMs?: number): Promise<void>;
  /** Run a prompt through the server's gateway (its keys, its call log). */
  run(options: RunOptions): Promise<RunResult>;
  /** Save a new version (created: false when the content equals the branch head). */
  save(options: SaveOptions): Promise<Prompt & { created: boolean }>;
  /** Point a label at a version; an environment's label moves only through its gate. */
  setLabel(options: SetLabelOptions): Promise<LabelMove>;
  /** Deploy through the environment's gate; a refusal throws (type "GateFailed", with `deployment`). */
  deploy(options: DeployOptions): Promise<DeployResult>;
  /** Versions, newest first. */
  history(options: PromptRef & { branch?: string; limit?: number }): Promise<VersionSummary[]>;
  /** Two versions compared (toVersion: main's head). */
  diff(options: PromptRef & { fromVersion: number; toVersion?: number }): Promise<Diff>;
}

/**
 * Render a template: `{{ name }}`, `{{ user.name }}`, `{{ items[0] }}` and the `default`,
 * `upper`, `lower`, `trim` and `length` filters, e.g. `{{ tone | default("friendly") }}`.
 * A missing variable is an error that names it. Any other Jinja syntax (`{% if %}`, `{% for %}`,
 * other filters) is refused with an error: render such prompts in Python.
 */
export declare function render(template: Template, variables?: Record<string, unknown>): Template;

export default PromStack;

export interface ReportedCall {
  model: string;
  /** A prompt id or name; one the server lacks is stored and flagged. */
  promptId?: number | string;
  prompt?: number | string;
  promptVersion?: number;
  inputTokens?: number;
  outputTokens?: number;
  latencyMs?: number;
  userId?: string;
  status?: "ok" | "error";
  error?: string;
  /** A Date, ISO 8601 text or epoch seconds; default now. */
  timestamp?: Date | string | number;
  /** Default: priced by the server. */
  costUsd?: number;
  provider?: string;
  operation?: string;
  environment?: string;
  /** The app's id for the call (default: a random one): a resent call is stored once. */
  callId?: string;
}

export interface CallReporterOptions {
  maxQueue?: number;
  batch?: number;
  intervalMs?: number;
  giveUpMs?: number;
  backoffMs?: number;
  maxBackoffMs?: number;
}

export declare class CallReporter {
  constructor(send: (batch: object[]) => Promise<object>, options?: CallReporterOptions);
  /** Stored by the server. */
  readonly sent: number;
  /** Never stored: the queue was full, or the server stayed away past giveUpMs. */
  readonly dropped: number;
  /** Refused by the server (a bad row). */
  readonly rejected: number;
  put(row: object): boolean;
  pending(): number;
  flush(timeoutMs?: number): Promise<boolean>;
  close(timeoutMs?: number): Promise<boolean>;
}
