// Every PromStack command. Each resolves its target (tree node, file, or a pick), makes one or
// two tool calls through the connection, and shows the result with the editor's own UI.
import { brokenCases, checkedSuites } from './checks';
import type { Connection } from './connection';
import { formatMetrics, formatRunResult, runSummary, testSummary } from './format';
import type { PromptTreeProvider } from './promptTree';
import type { Targets, VersionTarget } from './targets';
import { previousVersion } from './tree';
import type { TestRun, Variable, VersionSummary } from './types';
import { diffTitle, versionUri } from './uris';
import { TOKEN_SECRET } from './launch';
import type { ResultPanels } from './webviews';
import { vscode } from './vs';

const LABELS = ['production', 'staging', 'test', 'development'];
const ENVIRONMENTS = new Set(LABELS);
const CRITERIA = [
  'Does the answer address the question?',
  'Is the answer factually correct and free of made-up details?',
  'Is the tone polite and professional?',
  'Is the answer concise?',
  'Does it follow the instructions in the prompt?',
];

export interface CommandDeps {
  connection: Connection;
  tree: PromptTreeProvider;
  treeView: vscode.TreeView<unknown>;
  targets: Targets;
  panels: ResultPanels;
  output: vscode.OutputChannel;
}

/** Compare Behaviour's argument from a notification: two versions of a prompt, and the suite. */
export interface CompareRequest {
  kind: 'compare';
  name: string;
  from: number;
  to: number;
  suite?: string;
}

const OTHER_SUITE = 'Another suite…';
const OTHER_CASE = 'Another case…';

export function registerCommands(context: vscode.ExtensionContext, deps: CommandDeps): void {
  const c = new Commands(deps);
  // A tree command gets the clicked node, then every selected node (the tree selects many).
  const table: Record<string, (arg?: unknown, selected?: unknown) => unknown> = {
    'promstack.refresh': () => c.refresh(),
    'promstack.showHistory': (a) => c.showHistory(a),
    'promstack.diffWithPrevious': (a) => c.diffWithPrevious(a),
    'promstack.diffVersions': (a) => c.diffVersions(a),
    'promstack.compareBehaviour': (a, selected) => c.compareBehaviour(a, selected),
    'promstack.bisect': (a) => c.bisect(a),
    'promstack.showCheck': (a) => c.showCheck(a),
    'promstack.openVersion': (a) => c.openVersion(a),
    'promstack.rollback': (a) => c.rollback(a),
    'promstack.createBranch': (a) => c.createBranch(a),
    'promstack.mergeBranch': (a) => c.mergeBranch(a),
    'promstack.setLabel': (a) => c.setLabel(a),
    'promstack.runPrompt': (a) => c.runPrompt(a),
    'promstack.runTests': (a) => c.runTests(a),
    'promstack.judge': () => c.judge(),
    'promstack.arena': (a) => c.arena(a),
    'promstack.showMetrics': (a) => c.showMetrics(a),
    'promstack.showOutput': () => deps.output.show(),
    'promstack.setServerToken': () => setServerToken(context),
  };
  for (const [id, fn] of Object.entries(table)) {
    context.subscriptions.push(vscode.commands.registerCommand(id, fn));
  }
}

/** Ask for the team server's token and keep it in VS Code's secret storage (empty: forget it). */
async function setServerToken(context: vscode.ExtensionContext): Promise<void> {
  const token = await vscode.window.showInputBox({
    title: 'PromStack: token for the team server (promstack.serverUrl)',
    prompt: "A token from 'promstack token create NAME --role ROLE' on the server's machine; empty removes the stored one.",
    password: true,
    ignoreFocusOut: true,
  });
  if (token === undefined) {
    return;
  }
  if (token.trim()) {
    await context.secrets.store(TOKEN_SECRET, token.trim());
  } else {
    await context.secrets.delete(TOKEN_SECRET);
  }
}

class Commands {
  private lastRun?: TestRun;

  constructor(private readonly d: CommandDeps) {}

  private get run() {
    return this.d.connection.run.bind(this.d.connection);
  }

  refresh(): void {
    this.d.connection.storeChanged();
  }

  private async openUri(uri: string, preview = true): Promise<void> {
    const doc = await vscode.workspace.openTextDocument(vscode.Uri.parse(uri));
    await vscode.window.showTextDocument(doc, { preview });
  }

  private diff(name: string, left: number, right: number): Thenable<unknown> {
    return vscode.commands.executeCommand('vscode.diff', vscode.Uri.parse(versionUri(name, left)), vscode.Uri.parse(versionUri(name, right)), diffTitle(name, left, right));
  }

  private async reveal(name: string): Promise<void> {
    const node = await this.d.tree.promptNode(name);
    if (node) {
      await this.d.treeView.reveal(node, { select: true, focus: false, expand: true }).then(undefined, () => undefined);
    }
  }

  async showHistory(arg: unknown): Promise<void> {
    const name = await this.d.targets.prompt(arg, 'Show the history of which prompt?');
    if (!name) {
      return;
    }
    void this.reveal(name);
    const picked = await this.d.targets.pickVersion(name, `History of ${name}, newest first: pick a version to open it`);
    if (picked) {
      await this.openUri(versionUri(name, picked.version));
    }
  }

  /** The head of main (with its parent) when the argument names a prompt but no version. */
  private async headOrArg(arg: unknown): Promise<VersionTarget | undefined> {
    const direct = this.d.targets.versionFromArg(arg);
    if (direct) {
      return direct;
    }
    const name = await this.d.targets.prompt(arg);
    if (!name) {
      return undefined;
    }
    const history = await this.run((c) => c.getHistory(name));
    const head = (await this.d.targets.promptSummary(name))?.head;
    const summary = history?.versions.find((v) => v.version === head) ?? history?.versions[0];
    return summary ? { name, version: summary.version, summary } : undefined;
  }

  async diffWithPrevious(arg: unknown): Promise<void> {
    const target = await this.headOrArg(arg);
    if (!target) {
      return;
    }
    let summary = target.summary;
    if (!summary) {
      summary = (await this.run((c) => c.getHistory(target.name)))?.versions.find((v) => v.version === target.version);
    }
    const previous = summary ? previousVersion(summary) : target.version - 1;
    if (!previous) {
      void vscode.window.showInformationMessage(`PromStack: ${target.name} v${target.version} is the first version; there is nothing before it.`);
      return;
    }
    await this.diff(target.name, previous, target.version);
  }

  async diffVersions(arg: unknown): Promise<void> {
    const first = this.d.targets.versionFromArg(arg) ?? (await this.d.targets.version(arg, 'Compare from which version (the older)?'));
    if (!first) {
      return;
    }
    const second = await this.d.targets.pickVersion(first.name, `Compare ${first.name} v${first.version} with which version?`, first.version);
    if (!second) {
      return;
    }
    const [left, right] = first.version < second.version ? [first.version, second.version] : [second.version, first.version];
    await this.diff(first.name, left, right);
  }

  /** The suite to run on: the one the prompt's checks used, asked when there are several. An
   *  unknown one is left to the server, which uses the prompt's own suite or says what to do. */
  private async pickSuite(name: string, versions: VersionSummary[]): Promise<string | null | undefined> {
    const suites = checkedSuites(versions);
    if (suites.length <= 1) {
      return suites[0] ?? undefined;
    }
    const picked = await vscode.window.showQuickPick([...suites, OTHER_SUITE], { placeHolder: `On which of ${name}'s test suites?` });
    if (picked !== OTHER_SUITE) {
      return picked ?? null;
    }
    return (await vscode.window.showInputBox({ prompt: 'Test suite name', placeHolder: 'regression' }))?.trim() || null;
  }

  /** Two versions of one prompt, older first: from a notification, two selected tree rows, or picks. */
  private async versionPair(arg: unknown, selected: unknown): Promise<{ name: string; from: number; to: number; suite?: string } | undefined> {
    const request = arg as CompareRequest | undefined;
    if (request?.kind === 'compare') {
      return request;
    }
    const chosen = (Array.isArray(selected) ? selected : [])
      .map((n) => this.d.targets.versionFromArg(n))
      .filter((t): t is VersionTarget => t !== undefined);
    let first: VersionTarget | undefined;
    let second: VersionTarget | undefined;
    if (chosen.length === 2 && chosen[0].name === chosen[1].name) {
      [first, second] = chosen;
    } else {
      first = this.d.targets.versionFromArg(arg) ?? (await this.d.targets.version(arg, 'Compare the behaviour of which version (A)?'));
      second = first && (await this.d.targets.pickVersion(first.name, `Compare the behaviour of ${first.name} v${first.version} with which version (B)?`, first.version));
    }
    if (!first || !second) {
      return undefined;
    }
    const [from, to] = first.version < second.version ? [first.version, second.version] : [second.version, first.version];
    return { name: first.name, from, to };
  }

  /** Runs two versions on a suite and shows, case by case, what each does and which the judge prefers. */
  async compareBehaviour(arg: unknown, selected?: unknown): Promise<void> {
    const pair = await this.versionPair(arg, selected);
    if (!pair) {
      return;
    }
    const { name, from, to } = pair;
    let suite: string | null | undefined = pair.suite;
    if (!suite) {
      const history = await this.run((c) => c.getHistory(name));
      if (!history) {
        return;
      }
      suite = await this.pickSuite(name, history.versions);
      if (suite === null) {
        return;
      }
    }
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Comparing what ${name} v${from} and v${to} do${suite ? ` on ${suite}` : ''}`, cancellable: true },
      (progress, token) => this.run((c) => c.diffVersions(name, from, to, { behaviour: true, suite }, {
        signal: abortOn(token),
        onProgress: (_done, _total, message) => message && progress.report({ message }),
      })),
    );
    if (!result) {
      return;
    }
    if (!result.behaviour) {
      void vscode.window.showWarningMessage('PromStack: this PromStack server diffs text only; upgrade PromStack (pip install -U promstack) to compare behaviour.');
      return;
    }
    this.d.panels.showBehaviour(name, result.behaviour);
    void vscode.window.showInformationMessage(`PromStack: ${name} v${from} ↔ v${to}: ${result.behaviour.text}`);
  }

  /** A version's check on save in a panel: what its tooltip says, with room for long inputs. */
  async showCheck(arg: unknown): Promise<void> {
    const target = await this.d.targets.version(arg, 'Show the check on save of which version?');
    if (!target) {
      return;
    }
    let summary = target.summary;
    if (!summary?.check) {
      summary = (await this.run((c) => c.getHistory(target.name)))?.versions.find((v) => v.version === target.version);
    }
    if (!summary?.check) {
      void vscode.window.showInformationMessage(`PromStack: ${target.name} v${target.version} has no check on save (saved before checks, or by an older PromStack).`);
      return;
    }
    this.d.panels.showCheck(target.name, target.version, summary.check);
  }

  /** Finds the version that broke a case: the cases saves broke are offered first. */
  async bisect(arg: unknown): Promise<void> {
    const name = await this.d.targets.prompt(arg, 'Find which prompt\'s breaking version?');
    if (!name) {
      return;
    }
    const history = await this.run((c) => c.getHistory(name));
    if (!history) {
      return;
    }
    const known = brokenCases(history.versions);
    const picked = await vscode.window.showQuickPick(
      [...known.map((c) => ({ label: c.case, description: `broke in v${c.version}`, detail: c.input })), { label: OTHER_CASE, description: 'its key in the suite' }],
      { placeHolder: `Which case of ${name} went from pass to fail?`, matchOnDetail: true },
    );
    if (!picked) {
      return;
    }
    const testCase = picked.label === OTHER_CASE
      ? (await vscode.window.showInputBox({ prompt: 'The case key (as in the suite)', placeHolder: '3' }))?.trim()
      : picked.label;
    if (!testCase) {
      return;
    }
    const suite = await this.pickSuite(name, history.versions);
    if (suite === null) {
      return;
    }
    // Started from a version row: that version is known bad.
    const bad = this.d.targets.versionFromArg(arg)?.version;
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Bisecting ${name} for case ${testCase}`, cancellable: true },
      (progress, token) => this.run((c) => c.bisectPrompt(name, { case: testCase, suite, bad }, {
        signal: abortOn(token),
        onProgress: (_done, _total, message) => message && progress.report({ message }),
      })),
    );
    if (!result) {
      return;
    }
    if (!result.found || !result.culprit) {
      void vscode.window.showInformationMessage(`PromStack: ${result.text}`);
      return;
    }
    const culprit = result.culprit;
    const parent = result.parent;
    const choice = await vscode.window.showWarningMessage(`PromStack: ${result.text}`, ...(parent ? ['Open Diff'] : []));
    if (choice === 'Open Diff' && parent) {
      await this.diff(name, parent, culprit);
    }
  }

  async openVersion(arg: unknown): Promise<void> {
    const target = await this.d.targets.version(arg, 'Open which version?');
    if (target) {
      await this.openUri(versionUri(target.name, target.version));
    }
  }

  async rollback(arg: unknown): Promise<void> {
    const target = await this.d.targets.version(arg, 'Roll back to which version?');
    if (!target) {
      return;
    }
    const ok = await vscode.window.showWarningMessage(
      `Roll back ${target.name} to v${target.version}?`,
      { modal: true, detail: `A new version with v${target.version}'s content becomes the head of main. Nothing is deleted; the history keeps every version.` },
      'Roll Back',
    );
    if (ok !== 'Roll Back') {
      return;
    }
    const made = await this.run((c) => c.rollback(target.name, target.version, { message: `Rolled back to v${target.version} from VS Code` }));
    if (made) {
      this.d.connection.storeChanged();
      void vscode.window.showInformationMessage(made.created ? `PromStack: ${made.name} rolled back to v${target.version}: new head v${made.version}.` : `PromStack: ${made.name} v${made.version} already has v${target.version}'s content; no version was made.`);
    }
  }

  async createBranch(arg: unknown): Promise<void> {
    const name = await this.d.targets.prompt(arg, 'Branch which prompt?');
    if (!name) {
      return;
    }
    const from = this.d.targets.versionFromArg(arg)?.version;
    const branch = await vscode.window.showInputBox({
      prompt: `New branch of ${name}${from ? ` from v${from}` : ' from the head of main'}`,
      placeHolder: 'experiment/shorter',
      validateInput: (v) => (/^[\w.\-/]{1,100}$/.test(v.trim()) ? undefined : "Letters, digits, '_', '-', '.', '/'"),
    });
    if (!branch) {
      return;
    }
    const made = await this.run((c) => c.createBranch(name, branch.trim(), from));
    if (made) {
      this.d.connection.storeChanged();
      void vscode.window.showInformationMessage(`PromStack: branch ${made.name} of ${name} starts at v${made.head}. Save to it with the watcher's --branch or update_prompt.`);
    }
  }

  async mergeBranch(arg: unknown): Promise<void> {
    const name = await this.d.targets.prompt(arg, 'Merge a branch of which prompt?');
    if (!name) {
      return;
    }
    const branches = (await this.d.targets.promptSummary(name))?.branches.filter((b) => b !== 'main') ?? [];
    if (branches.length === 0) {
      void vscode.window.showInformationMessage(`PromStack: ${name} has no branches besides main. Create Branch makes one.`);
      return;
    }
    const branch = await vscode.window.showQuickPick(branches, { placeHolder: `Merge which branch of ${name} into main?` });
    if (!branch) {
      return;
    }
    const made = await this.run((c) => c.mergeBranch(name, branch, { message: `Merged ${branch} from VS Code` }));
    if (made) {
      this.d.connection.storeChanged();
      void vscode.window.showInformationMessage(`PromStack: merged ${branch} into main: ${made.name} v${made.version}.`);
    }
  }

  async setLabel(arg: unknown): Promise<void> {
    const target = await this.d.targets.version(arg, 'Label (deploy) which version?');
    if (!target) {
      return;
    }
    const picked = await vscode.window.showQuickPick(
      [...LABELS.map((l) => ({ label: l, description: l === 'production' ? 'what production apps get by default' : '' })), { label: 'Other label…', description: '' }],
      { placeHolder: `Point which label at ${target.name} v${target.version}?` },
    );
    if (!picked) {
      return;
    }
    const label = picked.label === 'Other label…' ? await vscode.window.showInputBox({ prompt: 'Label name', placeHolder: 'canary' }) : picked.label;
    if (!label) {
      return;
    }
    const reason = await vscode.window.showInputBox({ prompt: `Why does ${label} move to v${target.version}? (kept in the label's history)`, placeHolder: 'tone approved by support' });
    if (reason === undefined) {
      return;
    }
    if (ENVIRONMENTS.has(label) && (await this.run((c) => c.hasTool('deploy_prompt')))) {
      await this.deploy(target, label, reason || undefined);
      return;
    }
    const moved = await this.run((c) => c.setLabel(target.name, label, target.version, reason || undefined));
    if (moved) {
      this.d.connection.storeChanged();
      const before = moved.from_version ? `v${moved.from_version}` : 'nothing';
      void vscode.window.showInformationMessage(`PromStack: ${target.name} ${label}: ${before} → v${moved.to_version}.`);
    }
  }

  /** An environment label moves through deploy_prompt, so its gate (tests, score, alerts) applies. */
  private async deploy(target: VersionTarget, environment: string, reason: string | undefined, force = false): Promise<void> {
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Deploying ${target.name} v${target.version} to ${environment}` },
      () => this.run((c) => c.deployPrompt(target.name, { environment, version: target.version, reason, force: force || undefined })),
    );
    if (!result) {
      return;
    }
    this.d.connection.storeChanged();
    const checks = result.checks.map((c) => `${c.passed ? '✓' : c.skipped ? '–' : '✗'} ${c.check}: ${c.detail}`).join('; ');
    if (result.status === 'refused') {
      const choice = await vscode.window.showWarningMessage(`PromStack: the ${environment} gate refused ${target.name} v${target.version}. ${result.message}${checks ? ` (${checks})` : ''}`, 'Deploy Anyway (audited)');
      if (choice === 'Deploy Anyway (audited)') {
        await this.deploy(target, environment, reason ?? 'forced from VS Code', true);
      }
      return;
    }
    void vscode.window.showInformationMessage(`PromStack: ${result.name} ${environment}: ${result.status}${result.from_version ? ` (v${result.from_version} → v${result.to_version})` : result.to_version ? ` (v${result.to_version})` : ''}. ${result.message}`);
  }

  private async askVariables(variables: Variable[]): Promise<Record<string, unknown> | undefined> {
    const values: Record<string, unknown> = {};
    for (const v of variables) {
      const value = await vscode.window.showInputBox({
        prompt: `{{ ${v.name} }}${v.description ? `: ${v.description}` : ''}${v.required === false ? ' (optional)' : ''}`,
        value: v.default === undefined || v.default === null ? '' : String(v.default),
        ignoreFocusOut: true,
      });
      if (value === undefined) {
        return undefined;
      }
      if (value !== '' || v.required !== false) {
        values[v.name] = value;
      }
    }
    return values;
  }

  async runPrompt(arg: unknown): Promise<void> {
    const name = await this.d.targets.prompt(arg, 'Run which prompt?');
    if (!name) {
      return;
    }
    const pinned = this.d.targets.versionFromArg(arg)?.version;
    const version = await this.run((c) => c.getPrompt(name, { version: pinned }));
    if (!version) {
      return;
    }
    const variables = await this.askVariables(version.variables);
    if (!variables) {
      return;
    }
    const result = await vscode.window.withProgress(
      { location: vscode.ProgressLocation.Notification, title: `Running ${name} v${version.version}`, cancellable: true },
      (_progress, token) => this.run((c) => c.runPrompt(name, variables, { version: version.version }, { signal: abortOn(token) })),
    );
    if (!result) {
      return;
    }
    const doc = await vscode.workspace.openTextDocument({ language: 'markdown', content: formatRunResult(name, { prompt_version: version.version, ...result }) });
    await vscode.window.showTextDocument(doc, { preview: true, viewColumn: vscode.ViewColumn.Beside });
    void vscode.window.showInformationMessage(`PromStack: ${name} — ${runSummary(result)}`);
  }

  private async withRunProgress(title: string, fn: (signal: AbortSignal, report: (done: number, total?: number, message?: string) => void) => Promise<TestRun | undefined>): Promise<TestRun | undefined> {
    return vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title, cancellable: true }, (progress, token) => {
      let last = 0;
      return fn(abortOn(token), (done, total, message) => {
        if (total) {
          const pct = (100 * done) / total;
          progress.report({ increment: pct - last, message: message || `${done}/${total}` });
          last = pct;
        } else if (message) {
          progress.report({ message });
        }
      });
    });
  }

  async runTests(arg: unknown): Promise<void> {
    const name = this.d.targets.nameFromArg(arg);
    const suite = await vscode.window.showInputBox({
      prompt: `Run which test suite${name ? ` against ${name}` : ''}?`,
      placeHolder: 'regression',
      value: this.lastRun?.suite ?? 'regression',
    });
    if (!suite) {
      return;
    }
    const run = await this.withRunProgress(`Testing ${name ?? ''} with suite ${suite}`, (signal, report) =>
      this.run((c) => c.runTests({ suite, prompt: name }, { signal, onProgress: report })));
    if (run) {
      this.showRun(run);
    }
  }

  private showRun(run: TestRun): void {
    this.lastRun = run;
    this.d.panels.showTestRun(run);
    const say = run.passed === false || run.errors > 0 ? vscode.window.showWarningMessage : vscode.window.showInformationMessage;
    void say(`PromStack: ${testSummary(run)}`);
  }

  /** Judges a test run (the last one run here, by default): it takes a run, not a prompt. */
  async judge(): Promise<void> {
    const runId = await vscode.window.showInputBox({ prompt: 'Judge which test run? (its id, from Run Test Suite or `promstack runs`)', value: this.lastRun?.run_id ?? '' });
    if (!runId) {
      return;
    }
    const picked = await vscode.window.showQuickPick(
      [...CRITERIA.map((c) => ({ label: c })), { label: 'Custom criterion…' }],
      { canPickMany: true, placeHolder: `Judge run ${runId} on which criteria?` },
    );
    if (!picked || picked.length === 0) {
      return;
    }
    const criteria = picked.filter((p) => p.label !== 'Custom criterion…').map((p) => p.label);
    if (picked.some((p) => p.label === 'Custom criterion…')) {
      const custom = await vscode.window.showInputBox({ prompt: 'Your criterion, as a question the judge answers', placeHolder: 'Does it mention the refund window?' });
      if (custom) {
        criteria.push(custom);
      }
    }
    const run = await this.withRunProgress(`Judging run ${runId}`, (signal, report) =>
      this.run((c) => c.judgeRun(runId, { criteria, scoring: '1-5' }, { signal, onProgress: report })));
    if (run) {
      this.showRun(run);
    }
  }

  async arena(arg: unknown): Promise<void> {
    const name = await this.d.targets.prompt(arg, 'Compare models on which prompt?');
    if (!name) {
      return;
    }
    const head = await this.run((c) => c.getPrompt(name));
    const own = typeof head?.model_config?.model === 'string' ? [head.model_config.model] : [];
    const known = [...new Set([...own, 'gpt-4o-mini', 'gpt-4o', 'claude-sonnet-4-5', 'claude-haiku-4-5', 'gemini-2.5-flash'])];
    const picked = await vscode.window.showQuickPick([...known.map((m) => ({ label: m, picked: own.includes(m) })), { label: 'Other model…' }], { canPickMany: true, placeHolder: 'Which models compete? (two or more)' });
    if (!picked) {
      return;
    }
    const models = picked.filter((p) => p.label !== 'Other model…').map((p) => p.label);
    if (picked.some((p) => p.label === 'Other model…')) {
      const other = await vscode.window.showInputBox({ prompt: 'Model names, comma-separated (as litellm names them)' });
      models.push(...(other ?? '').split(',').map((s) => s.trim()).filter(Boolean));
    }
    if (models.length < 2) {
      void vscode.window.showWarningMessage('PromStack: an arena needs at least two models.');
      return;
    }
    const suite = await vscode.window.showInputBox({ prompt: 'On which test suite?', value: this.lastRun?.suite ?? 'regression' });
    if (!suite) {
      return;
    }
    const report = await vscode.window.withProgress({ location: vscode.ProgressLocation.Notification, title: `Arena: ${models.join(' vs ')}`, cancellable: true }, (progress, token) => {
      let last = 0;
      return this.run((c) => c.runArena({ prompt: name, models, suite }, {
        signal: abortOn(token),
        onProgress: (done, total, message) => {
          if (total) {
            progress.report({ increment: (100 * done) / total - last, message: message || `${done}/${total}` });
            last = (100 * done) / total;
          }
        },
      }));
    });
    if (report) {
      this.d.panels.showArena(report);
      void vscode.window.showInformationMessage(`PromStack: ${report.headline.models}: ${report.headline.win_rates}`);
    }
  }

  async showMetrics(arg: unknown): Promise<void> {
    const name = this.d.targets.nameFromArg(arg);
    const metrics = await this.run((c) => c.getMetrics({ prompt: name, since: '24h', by: ['model'] }));
    if (metrics) {
      const doc = await vscode.workspace.openTextDocument({ language: 'plaintext', content: formatMetrics(metrics, `PromStack metrics${name ? ` for ${name}` : ''}, last 24 h by model`) });
      await vscode.window.showTextDocument(doc, { preview: true });
    }
  }
}

function abortOn(token: vscode.CancellationToken): AbortSignal {
  const controller = new AbortController();
  token.onCancellationRequested(() => controller.abort());
  return controller.signal;
}
