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
  /** The check on save; null (or absent, from an older server) when the version was never
   *  considered, e.g. saved before the feature. */
  check?: VersionCheck | null;
}

/** A case whose verdict changed between a version and its parent. */
export interface CaseChange {
  case: string;
  /** The case's input, clipped to 200 characters by the server. */
  input: string;
  parent_score: number | null;
  score: number | null;
  /** The judge's (or the assertion's) reason on the new version. */
  reason: string | null;
}

export type CheckStatus = 'pending' | 'checked' | 'not_checked' | 'no_suite' | 'off';

/** The quick check run when a version is saved: its score against its parent's on a sample of
 *  the tied suite (promstack/evals/check.py). */
export interface VersionCheck {
  status: CheckStatus;
  suite: string | null;
  score: number | null;
  parent_version: number | null;
  parent_score: number | null;
  delta: number | null;
  broke: CaseChange[];
  fixed: CaseChange[];
  sample: number;
  cost_usd: number | null;
  /** For not_checked, no_suite and off: one sentence why. */
  reason: string | null;
  /** The server's one wording, e.g. "82 (-9: 2 broke)", "checking…", "no suite". */
  text: string;
  checked_at: string | null;
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
  check?: VersionCheck | null;
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
  /** With `behaviour: true`: both versions run on a suite, case by case. */
  behaviour?: BehaviourDiff | null;
}

export interface BehaviourCase {
  case: string;
  input: string;
  output_a: string;
  output_b: string;
  winner: 'a' | 'b' | 'tie';
  /** The judge's reason. */
  reason: string;
  /** 0..1: how much the case changed (the server orders by it). */
  margin: number;
}

/** What two versions do differently (promstack/evals/behaviour.py): A is from_version. */
export interface BehaviourDiff {
  suite: string;
  from_version: number;
  to_version: number;
  a_better: number;
  b_better: number;
  same: number;
  verdict: 'A better' | 'B better' | 'same';
  /** The one-line summary, one wording for every face. */
  text: string;
  /** Changed most first. */
  cases: BehaviourCase[];
  cost_usd: number | null;
}

/** bisect_prompt: the first version where a case went from pass to fail. */
export interface BisectResult {
  culprit: number | null;
  parent: number | null;
  tested: number[];
  model_calls: number;
  /** The culprit against its parent, unified. */
  diff: string;
  /** The judge's reason on the culprit. */
  reason: string | null;
  text: string;
  found: boolean;
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
  output: string;
  model: string;
  prompt_id?: number | null;
  prompt_version?: number | null;
  input_tokens: number;
  output_tokens: number;
  latency_ms: number;
  /** null when the model has no price (`unpriced` says so), never a silent $0. */
  cost_usd: number | null;
  priced?: boolean;
  unpriced?: string | null;
  cache_hit: boolean;
  status?: string;
  call_id?: string;
  /** What each guard found and did (PII masked, injection flagged, output filtered). */
  guards?: Record<string, unknown>;
}

export interface FailingCase {
  case: number | null;
  model: string;
  repeat?: number;
  status: string;
  input?: string | null;
  expected?: string | null;
  output?: string | null;
  why?: string | null;
}

/** run_tests, judge_run (and get_run's `test`): a run's summary with its failing cases. */
export interface TestRun {
  run_id: string;
  kind: string;
  status: string;
  suite: string;
  prompt_id: number | null;
  prompt_version: number | null;
  models: string[];
  passed?: boolean | null;
  /** The server's verdict with the thresholds it was held to (one wording for every face). */
  verdict?: string | null;
  threshold?: number;
  pass_rate: number;
  /** null when the judge (or the model) could not score a case: never 0. */
  score: number | null;
  unscored?: number;
  unscored_reason?: string | null;
  criteria?: Array<Record<string, unknown>>;
  results: number;
  total: number;
  failed: number;
  errors: number;
  unchecked: number;
  input_tokens: number;
  output_tokens: number;
  cost_usd: number;
  /** How many calls the cost leaves out for want of a price. */
  unpriced_note?: string | null;
  latency_ms: Record<string, number | null>;
  per_model: Record<string, Record<string, unknown>>;
  failing: FailingCase[];
}

export interface SuiteResult {
  suite: string;
  cases: number;
  prompt_id: number | null;
  source: string;
  settings: Record<string, unknown>;
}

/** run_arena (and get_run's `arena`). */
export interface ArenaReport {
  run_id: string;
  suite: string;
  models: string[];
  headline: { models: string; win_rates: string; shares: string };
  overall: Record<string, { wins?: number; losses?: number; ties?: number; matches?: number; win_rate?: number | null; share?: number | null }>;
  pairs: Record<string, Record<string, unknown>>;
  ratings: Record<string, { rating: number; ci_low?: number | null; ci_high?: number | null }>;
  order_flip_rate: number | null;
  separated?: boolean;
  /** Why the leaderboard separates nobody (the judge preferred a position, or all tied). */
  no_separation?: string | null;
  matches: number;
  errors: number;
  human: Record<string, unknown>;
}

export interface GetRunResult {
  run_id: string;
  kind: 'test' | 'arena' | string;
  test?: TestRun | null;
  arena?: ArenaReport | null;
}

/** get_metrics: the call log over a window, one row per group. */
export interface MetricsResult {
  since: string | null;
  until: string;
  by: string[];
  percentile_method: string;
  groups: Array<Record<string, unknown>>;
  unpriced?: string | null;
  unpriced_calls?: number;
  unpriced_models?: string[];
}

export interface GateCheck {
  check: string;
  passed: boolean;
  skipped?: boolean;
  detail: string;
}

/** deploy_prompt. */
export interface DeployResult {
  status: string; // deployed, refused, pending_approval, rolling_out, unchanged
  deployment_id?: number | null;
  prompt_id: number;
  name: string;
  environment: string;
  from_version?: number | null;
  to_version?: number | null;
  forced?: boolean;
  checks: GateCheck[];
  message: string;
}
