// The extension's PromStack server: one `promstack mcp` process per window, started on first
// use from the settings, restarted when they change, its stderr in the output channel, and
// every failure turned into a message with a fix.
import * as os from 'node:os';
import { MissingToolError, PromStackClient, ToolError } from './client';
import { explainStartFailure, explainToolError, resolveLaunch, TOKEN_SECRET, type Launch, type ServerSettings } from './launch';
import { vscode } from './vs';

export function readSettings(): ServerSettings & { promptsFolder: string; registerMcpServer: boolean } {
  const c = vscode.workspace.getConfiguration('promstack');
  return {
    command: c.get<string>('command', 'promstack'),
    pythonPath: c.get<string>('pythonPath', ''),
    store: c.get<string>('store', ''),
    serverUrl: c.get<string>('serverUrl', ''),
    promptsFolder: c.get<string>('promptsFolder', 'prompts'),
    registerMcpServer: c.get<boolean>('registerMcpServer', true),
  };
}

export function workspaceRoot(): string | undefined {
  return vscode.workspace.workspaceFolders?.[0]?.uri.fsPath;
}

let serverToken: string | undefined;

/** Read the token from secret storage (at activation and whenever it changes); true if it changed. */
export async function loadServerToken(secrets: vscode.SecretStorage): Promise<boolean> {
  const found = (await secrets.get(TOKEN_SECRET)) || undefined;
  const changed = found !== serverToken;
  serverToken = found;
  return changed;
}

export function currentLaunch(): Launch {
  return resolveLaunch(readSettings(), workspaceRoot(), process.env.HOME, serverToken);
}

function safeUserName(): string {
  try {
    return os.userInfo().username;
  } catch {
    return 'vscode';
  }
}

export class Connection implements vscode.Disposable {
  private client?: PromStackClient;
  private readonly changed = new vscode.EventEmitter<void>();
  /** Fires when the store changed (the server said so, or a command here wrote to it). */
  readonly onDidChangeStore = this.changed.event;

  constructor(private readonly output: vscode.OutputChannel) {}

  /** The client, started on first use. */
  get(): PromStackClient {
    if (!this.client) {
      const launch = currentLaunch();
      // Versions made here are the person's, as the watcher's are (not the MCP client's name).
      launch.env.PROMSTACK_USER ??= process.env.PROMSTACK_USER || safeUserName();
      const where = launch.env.PROMSTACK_URL ? ` (PROMSTACK_URL=${launch.env.PROMSTACK_URL})`
        : launch.env.PROMSTACK_DB ? ` (PROMSTACK_DB=${launch.env.PROMSTACK_DB})` : '';
      this.output.appendLine(`[promstack] starting ${launch.display}${where} in ${launch.cwd ?? process.cwd()}`);
      this.client = new PromStackClient(launch, {
        onStderr: (line) => this.output.appendLine(line),
        onPromptsChanged: () => this.changed.fire(),
        onClose: () => this.output.appendLine('[promstack] the server exited; the next command starts it again'),
      });
    }
    return this.client;
  }

  /** Tells every view to reload: after a write made here, or when settings change. */
  storeChanged(): void {
    this.changed.fire();
  }

  async restart(): Promise<void> {
    const old = this.client;
    this.client = undefined;
    await old?.close();
    this.changed.fire();
  }

  /**
   * Runs `fn` with the client; any failure is shown (with its fix) and yields undefined, so a
   * command is `const r = await conn.run(c => c.getHistory(name)); if (!r) return;`.
   */
  async run<T>(fn: (client: PromStackClient) => Promise<T>): Promise<T | undefined> {
    try {
      return await fn(this.get());
    } catch (error) {
      this.report(error);
      return undefined;
    }
  }

  report(error: unknown): void {
    if (error instanceof MissingToolError) {
      void vscode.window.showWarningMessage(`PromStack: ${error.message}`);
      return;
    }
    if (error instanceof ToolError) {
      void vscode.window.showErrorMessage(`PromStack: ${explainToolError(error.message)}`);
      return;
    }
    if ((error as { name?: string })?.name === 'AbortError' || /aborted|cancel/i.test(String((error as Error)?.message))) {
      return; // the person cancelled
    }
    const client = this.client;
    const launch = client?.launch ?? currentLaunch();
    const failure = explainStartFailure(launch, error, client?.recentStderr ?? '');
    this.output.appendLine(`[promstack] ${String((error as Error)?.stack ?? error)}`);
    // A dead server is started afresh by the next command.
    if (client && client.pid === null) {
      this.client = undefined;
    }
    const actions = failure.setting ? ['Open Settings', 'Show Log'] : ['Show Log'];
    void vscode.window.showErrorMessage(`${failure.message} ${failure.fix}`, ...actions).then((choice) => {
      if (choice === 'Open Settings') {
        void vscode.commands.executeCommand('workbench.action.openSettings', failure.setting);
      } else if (choice === 'Show Log') {
        this.output.show(true);
      }
    });
  }

  dispose(): void {
    void this.client?.close();
    this.changed.dispose();
  }
}
