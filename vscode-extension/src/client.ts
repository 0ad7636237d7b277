// The extension's one connection to PromStack: `promstack mcp` over stdio, through the
// TypeScript MCP SDK's v2 client. One method per tool, named and typed as the tools are
// (mcp_server/models.py). No `vscode` import, so the contract test drives this module against a
// real server.
import { Client } from '@modelcontextprotocol/client';
import { StdioClientTransport, getDefaultEnvironment } from '@modelcontextprotocol/client/stdio';
import type { Launch } from './launch';
import type {
  ArenaReport, BisectResult, BranchResult, DeployResult, DiffResult, GetRunResult, HistoryResult,
  LabelResult, MetricsResult, PromptSummary, PromptVersion, RunResult, SuiteResult, TestRun,
} from './types';

export type PromptRef = string | number;

/** A tool answered with isError: the server's sentence, meant for a person. */
export class ToolError extends Error {
  constructor(readonly tool: string, message: string) {
    super(message);
    this.name = 'ToolError';
  }
}

/** The server offers no such tool (an older PromStack). */
export class MissingToolError extends ToolError {}

export interface ClientOptions {
  /** Each line the server writes on stderr (its log). */
  onStderr?: (line: string) => void;
  /** The server announced that prompts changed (a save, the watcher, the CLI). */
  onPromptsChanged?: () => void;
  /** The server process went away. */
  onClose?: () => void;
  /** Per-call timeout; long runs pass their own. */
  timeoutMs?: number;
  /** Base environment; defaults to the current process's. */
  env?: NodeJS.ProcessEnv;
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  onProgress?: (progress: number, total: number | undefined, message: string | undefined) => void;
}

function dropUndefined(args: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(args).filter(([, v]) => v !== undefined && v !== ''));
}

export class PromStackClient {
  private client?: Client;
  private transport?: StdioClientTransport;
  private connecting?: Promise<Client>;
  private tools?: Set<string>;
  private stderrTail: string[] = [];

  constructor(readonly launch: Launch, private readonly options: ClientOptions = {}) {}

  /** The server's last stderr lines, for an error message. */
  get recentStderr(): string {
    return this.stderrTail.join('\n');
  }

  get pid(): number | null {
    return this.transport?.pid ?? null;
  }

  /** Starts the server (once) and completes the MCP handshake. */
  connect(): Promise<Client> {
    if (this.client) {
      return Promise.resolve(this.client);
    }
    this.connecting ??= this.start().finally(() => (this.connecting = undefined));
    return this.connecting;
  }

  private async start(): Promise<Client> {
    const base = this.options.env ?? process.env;
    const env: Record<string, string> = { ...getDefaultEnvironment() };
    for (const [k, v] of Object.entries(base)) {
      if (v !== undefined) {
        env[k] = v;
      }
    }
    Object.assign(env, this.launch.env);
    const transport = new StdioClientTransport({
      command: this.launch.command,
      args: this.launch.args,
      cwd: this.launch.cwd,
      env,
      stderr: 'pipe',
    });
    let partial = '';
    transport.stderr?.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.stderrTail = [...this.stderrTail.slice(-19), line];
        this.options.onStderr?.(line);
      }
    });
    const client = new Client(
      { name: 'promstack-vscode', version: '0.1.0' },
      {
        listChanged: {
          prompts: { autoRefresh: false, debounceMs: 200, onChanged: () => this.options.onPromptsChanged?.() },
        },
      },
    );
    client.onclose = () => {
      if (this.client === client) {
        this.client = undefined;
        this.transport = undefined;
        this.tools = undefined;
        this.options.onClose?.();
      }
    };
    try {
      await client.connect(transport, { timeout: this.options.timeoutMs ?? 30_000 });
    } catch (error) {
      // A server that started but failed the handshake must not linger.
      await transport.close().catch(() => undefined);
      throw error;
    }
    this.client = client;
    this.transport = transport;
    return client;
  }

  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.tools = undefined;
    const transport = this.transport;
    this.transport = undefined;
    await client?.close().catch(() => undefined);
    await transport?.close().catch(() => undefined);
  }

  /** The tools this server offers (older servers lack the evaluation ones). */
  async toolNames(): Promise<Set<string>> {
    if (!this.tools) {
      const client = await this.connect();
      const listed = await client.listTools();
      this.tools = new Set(listed.tools.map((t) => t.name));
    }
    return this.tools;
  }

  async hasTool(name: string): Promise<boolean> {
    return (await this.toolNames()).has(name);
  }

  /** Calls a tool and returns its structured result; a tool error becomes a ToolError. */
  async call<T>(tool: string, args: Record<string, unknown>, options: CallOptions = {}): Promise<T> {
    const client = await this.connect();
    if (!(await this.hasTool(tool))) {
      throw new MissingToolError(tool, `this PromStack server has no '${tool}' tool; upgrade PromStack (pip install -U promstack)`);
    }
    const result = await client.callTool(
      { name: tool, arguments: dropUndefined(args) },
      {
        signal: options.signal,
        timeout: options.timeoutMs ?? this.options.timeoutMs ?? 60_000,
        resetTimeoutOnProgress: true,
        onprogress: options.onProgress
          ? (p: { progress: number; total?: number; message?: string }) => options.onProgress?.(p.progress, p.total, p.message)
          : undefined,
      },
    );
    const texts = (result.content ?? [])
      .filter((c): c is { type: 'text'; text: string } => c.type === 'text')
      .map((c) => c.text)
      .join('\n');
    if (result.isError) {
      // The SDK prefixes the server's sentence; the person needs only the sentence.
      throw new ToolError(tool, texts.replace(/^Error executing tool \w+: /, '') || `${tool} failed`);
    }
    if (result.structuredContent === undefined) {
      // A result model that is not an object travels as JSON text; a tool without one, as text.
      try {
        return JSON.parse(texts) as T;
      } catch {
        return { text: texts } as T;
      }
    }
    const structured = result.structuredContent as Record<string, unknown>;
    // The SDK wraps a non-object return value as {"result": ...}.
    return (Object.keys(structured).length === 1 && 'result' in structured ? structured.result : structured) as T;
  }

  /** The plain-text content of a tool's answer, for tools whose text is the report. */
  async callText(tool: string, args: Record<string, unknown>, options: CallOptions = {}): Promise<string> {
    const client = await this.connect();
    const result = await client.callTool({ name: tool, arguments: dropUndefined(args) }, { signal: options.signal, timeout: options.timeoutMs ?? 60_000 });
    const texts = (result.content ?? []).filter((c) => c.type === 'text').map((c) => (c as { text: string }).text).join('\n');
    if (result.isError) {
      throw new ToolError(tool, texts);
    }
    return texts;
  }

  // ---- version control ----------------------------------------------------------------

  async listPrompts(includeDeleted = false): Promise<PromptSummary[]> {
    const r = await this.call<{ prompts: PromptSummary[] }>('list_prompts', { include_deleted: includeDeleted || undefined });
    return r.prompts;
  }

  getPrompt(prompt: PromptRef, sel: { version?: number; label?: string; branch?: string } = {}): Promise<PromptVersion> {
    return this.call('get_prompt', { prompt, ...sel });
  }

  createPrompt(prompt: string, template: string | Array<{ role: string; content: string }>, extra: { model_config?: Record<string, unknown>; description?: string; message?: string } = {}): Promise<PromptVersion> {
    return this.call('create_prompt', { prompt, template, ...extra });
  }

  updatePrompt(prompt: PromptRef, change: { template?: unknown; model_config?: Record<string, unknown>; message?: string; branch?: string }): Promise<PromptVersion> {
    return this.call('update_prompt', { prompt, ...change });
  }

  deletePrompt(prompt: PromptRef): Promise<PromptSummary> {
    return this.call('delete_prompt', { prompt });
  }

  restorePrompt(prompt: PromptRef): Promise<PromptSummary> {
    return this.call('restore_prompt', { prompt });
  }

  /** Newest first; each version carries its check on save (`check`) when the server has one. */
  getHistory(prompt: PromptRef, opts: { branch?: string; limit?: number } = {}): Promise<HistoryResult> {
    return this.call('get_history', { prompt, branch: opts.branch, limit: opts.limit ?? 500 });
  }

  /** A text diff; with `behaviour` both versions also run on a suite (model calls, so a long
   *  timeout) and `behaviour` in the result compares what they do, case by case. */
  diffVersions(prompt: PromptRef, fromVersion: number, toVersion?: number, opts: { behaviour?: boolean; suite?: string } = {}, options?: CallOptions): Promise<DiffResult> {
    const behaviour = opts.behaviour ? { behaviour: true, suite: opts.suite } : {};
    return this.call('diff_versions', { prompt, from_version: fromVersion, to_version: toVersion, ...behaviour }, opts.behaviour ? { timeoutMs: 3_600_000, ...options } : options);
  }

  /** The first version on a branch where a case went from pass to fail (or the suite's score
   *  fell below `min_score`). */
  bisectPrompt(prompt: PromptRef, args: { case?: string; suite?: string; min_score?: number; good?: number; bad?: number; branch?: string }, options?: CallOptions): Promise<BisectResult> {
    return this.call('bisect_prompt', { prompt, ...args }, { timeoutMs: 3_600_000, ...options });
  }

  rollback(prompt: PromptRef, version: number, opts: { branch?: string; message?: string } = {}): Promise<PromptVersion> {
    return this.call('rollback_prompt', { prompt, version, ...opts });
  }

  createBranch(prompt: PromptRef, branch: string, fromVersion?: number): Promise<BranchResult> {
    return this.call('create_branch', { prompt, branch, from_version: fromVersion });
  }

  mergeBranch(prompt: PromptRef, branch: string, opts: { into?: string; message?: string } = {}): Promise<PromptVersion> {
    return this.call('merge_branch', { prompt, branch, ...opts });
  }

  /** A gated environment's label (staging, production) moves only through its gate; `force`
   *  (with a reason, audited) moves it anyway. */
  setLabel(prompt: PromptRef, label: string, version: number, reason?: string, force?: boolean): Promise<LabelResult> {
    return this.call('set_label', { prompt, label, version, reason, ...(force ? { force } : {}) });
  }

  // ---- running and evaluating -----------------------------------------------------------

  runPrompt(prompt: PromptRef, variables: Record<string, unknown>, sel: { version?: number; label?: string; branch?: string; model?: string } = {}, options?: CallOptions): Promise<RunResult> {
    return this.call('run_prompt', { prompt, variables, ...sel }, { timeoutMs: 300_000, ...options });
  }

  importTestCases(args: { suite: string; file?: string; cases?: string | Array<Record<string, unknown>>; format?: 'csv' | 'json' | 'jsonl'; prompt?: PromptRef }): Promise<SuiteResult> {
    return this.call('import_test_cases', args);
  }

  runTests(args: { suite: string; prompt?: PromptRef; version?: number; models?: string[]; criteria?: unknown }, options?: CallOptions): Promise<TestRun> {
    return this.call('run_tests', args, { timeoutMs: 3_600_000, ...options });
  }

  getRun(runId: string, failing = 200): Promise<GetRunResult> {
    return this.call('get_run', { run_id: runId, failing });
  }

  judgeRun(runId: string, criteria: unknown, options?: CallOptions): Promise<TestRun> {
    return this.call('judge_run', { run_id: runId, criteria }, { timeoutMs: 3_600_000, ...options });
  }

  runArena(args: { suite: string; models: string[]; prompt?: PromptRef; version?: number; criteria?: unknown; judge_model?: string }, options?: CallOptions): Promise<ArenaReport> {
    return this.call('run_arena', args, { timeoutMs: 3_600_000, ...options });
  }

  evaluatePrompt(prompt: PromptRef, args: { suite?: string; version?: number } = {}, options?: CallOptions): Promise<{ score: number | null; pass_rate: number; run: TestRun }> {
    return this.call('evaluate_prompt', { prompt, ...args }, { timeoutMs: 3_600_000, ...options });
  }

  getMetrics(args: { prompt?: PromptRef; since?: string; by?: string[] } = {}): Promise<MetricsResult> {
    return this.call('get_metrics', args);
  }

  deployPrompt(prompt: PromptRef, args: { environment: string; version?: number; reason?: string; force?: boolean }): Promise<DeployResult> {
    return this.call('deploy_prompt', { prompt, ...args }, { timeoutMs: 3_600_000 });
  }
}
