// The shapes of the PromStack MCP tools' structured results (mcp_server/models.py), as far as
// the extension reads them. Evaluation tools return engine dictionaries; only the fields used
// here are named, the rest pass through.

export interface PromptSummary {
  id: number;
  name: string;
  description: string | null;
  created_at: string;
  created_by: string;
  archived: boolean;
  head: number | null;
  versions: number;
  labels: Record<string, number>;
  branches: string[];
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

export interface HistoryResult {
  prompt_id: number;
  name: string;
  versions: VersionSummary[];
}

export interface Variable {
  name: string;
  type?: string;
  required?: boolean;
  description?: string | null;
  default?: unknown;
}

export interface ChatMessage {
  role: string;
  content: string;
  name?: string;
}

export interface PromptVersion {
  prompt_id: number;
  name: string;
  version: number;
  branch: string;
  kind: 'text' | 'chat';
  template: string | ChatMessage[];
  model_config: Record<string, unknown>;
  variables: Variable[];
  sha256: string;
  parent: number | null;
  merge_parent: number | null;
  message: string | null;
  author: string;
  source: string;
  created_at: string;
  created: boolean;
  warnings?: string[];
}

export interface DiffResult {
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
}

export interface BranchResult {
  prompt_id: number;
  name: string;
  head: number;
  forked_from: number | null;
  created_at: string;
  created_by: string;
}

export interface LabelResult {
  prompt_id: number;
  label: string;
  from_version: number | null;
  to_version: number | null;
  actor: string;
  reason: string | null;
  at: string;
}

/** run_prompt: the gateway's CallResult. */
export interface RunResult {
  output?: string;
  model?: string;
  input_tokens?: number;
  output_tokens?: number;
  latency_ms?: number;
  cost_usd?: number | null;
  cache_hit?: boolean;
  prompt_version?: number;
  [key: string]: unknown;
}

export interface FailingCase {
  case: number;
  model?: string;
  repeat?: number;
  status: string;
  input?: unknown;
  expected?: unknown;
  output?: unknown;
  why?: string | null;
}

/** run_tests / get_run / judge_run: a run with its summary. */
export interface TestRun {
  id: string;
  kind?: string;
  status?: string;
  suite_name?: string;
  prompt_id?: number;
  prompt_version?: number;
  models?: string[];
  total?: number;
  summary?: {
    results?: number;
    passed?: number;
    failed?: number;
    errors?: number;
    total?: number;
    pass_rate?: number;
    score?: number;
    complete?: boolean;
    failing?: FailingCase[];
    [key: string]: unknown;
  } | null;
  results?: Array<Record<string, unknown>>;
  arena?: ArenaReport;
  [key: string]: unknown;
}

export interface ArenaReport {
  models: string[];
  matches: number;
  judged: number;
  errors: number;
  overall: Record<string, { wins?: number; losses?: number; ties?: number; win_rate?: number | null; share?: number | null; [k: string]: unknown }>;
  ratings?: Record<string, { rating?: number; low?: number; high?: number; [k: string]: unknown }> | Array<Record<string, unknown>>;
  headline?: { models: string; win_rates: string; shares: string };
  [key: string]: unknown;
}

/** get_metrics: totals and groups of the call log. */
export interface MetricsResult {
  [key: string]: unknown;
}
