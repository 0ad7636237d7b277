/** PromStack's TypeScript SDK over the REST API of `promstack serve`. */

export interface PromStackOptions {
  /** The server, e.g. "http://127.0.0.1:8787" (the default). */
  baseUrl?: string;
  /** Sent as `Authorization: Bearer <token>` (the server's PROMSTACK_TOKEN). */
  token?: string;
  /** How long a fetched prompt is reused, in milliseconds (default 5000; 0 turns the cache off). */
  cacheTtlMs?: number;
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
}

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
  /** Fill `{{ variable }}`s (see `render`). */
  render(variables?: Record<string, unknown>): Template;
}

export declare class PromStackError extends Error {
  /** The HTTP status (400 bad input, 401 token, 404 not found), or 0 before any request. */
  readonly status: number;
}

export declare class PromStack {
  constructor(options?: PromStackOptions);
  getPrompt(options: GetPromptOptions): Promise<Prompt>;
  listPrompts(): Promise<Array<Record<string, unknown>>>;
  /** Forget every cached prompt. */
  clearCache(): void;
}

/**
 * Render a template: `{{ name }}`, `{{ user.name }}`, `{{ items[0] }}` and the `default`,
 * `upper`, `lower`, `trim` and `length` filters, e.g. `{{ tone | default("friendly") }}`.
 * A missing variable is an error that names it. Any other Jinja syntax (`{% if %}`, `{% for %}`,
 * other filters) is refused with an error: render such prompts in Python.
 */
export declare function render(template: Template, variables?: Record<string, unknown>): Template;

export default PromStack;
