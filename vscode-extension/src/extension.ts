// PromStack for VS Code: a thin client of `promstack mcp`. activate() only wires things up.
import { CheckWatch } from './checkWatch';
import { registerCommands, type CompareRequest } from './commands';
import { Connection, loadServerToken } from './connection';
import { TOKEN_SECRET } from './launch';
import { registerMcpDefinitions } from './mcpDefinition';
import { PromptTreeProvider } from './promptTree';
import { PromptStatusBar } from './statusBar';
import { Targets } from './targets';
import { VersionDocumentProvider } from './versionDocuments';
import { vscode } from './vs';
import { ResultPanels } from './webviews';

export function activate(context: vscode.ExtensionContext): void {
  const output = vscode.window.createOutputChannel('PromStack');
  const connection = new Connection(output);
  const tree = new PromptTreeProvider(connection);
  // Many rows can be selected, so Compare Behaviour can take two versions at once.
  const treeView = vscode.window.createTreeView('promstack.prompts', { treeDataProvider: tree, showCollapseAll: true, canSelectMany: true });
  const documents = new VersionDocumentProvider(connection);
  const status = new PromptStatusBar(connection, tree);
  const panels = new ResultPanels();
  const mcp = registerMcpDefinitions(context);
  const checks = new CheckWatch(connection, tree, {
    showCases: (name, version, check) => panels.showCheck(name, version, check),
    compare: (name, from, to, suite) => void vscode.commands.executeCommand('promstack.compareBehaviour', { kind: 'compare', name, from, to, suite } satisfies CompareRequest),
  });
  context.subscriptions.push(
    output, connection, treeView, status, panels, checks,
    vscode.workspace.registerTextDocumentContentProvider(VersionDocumentProvider.scheme, documents),
    connection.onDidChangeStore(() => {
      tree.refresh();
      status.refresh();
      void checks.storeChanged();
    }),
    vscode.window.onDidChangeActiveTextEditor(() => status.refresh(0)),
    vscode.workspace.onDidChangeTextDocument((e) => e.document === vscode.window.activeTextEditor?.document && status.refresh()),
    vscode.workspace.onDidSaveTextDocument(() => status.refresh()),
    vscode.workspace.onDidChangeConfiguration((e) => {
      if (e.affectsConfiguration('promstack')) {
        documents.refresh();
        mcp?.refresh();
        void connection.restart();
      }
    }),
  );
  // The team server's token lives in secret storage; a change restarts the server with it.
  const reloadToken = async (): Promise<void> => {
    if (await loadServerToken(context.secrets)) {
      mcp?.refresh();
      await connection.restart();
    }
  };
  void reloadToken();
  context.subscriptions.push(context.secrets.onDidChange((e) => e.key === TOKEN_SECRET && void reloadToken()));
  registerCommands(context, { connection, tree, treeView: treeView as vscode.TreeView<unknown>, targets: new Targets(connection, tree), panels, output });
  status.refresh(0);
  // The heads as the window opens: a later save is told from them.
  void checks.storeChanged();
}

export function deactivate(): void {
  // Disposables in context.subscriptions close the server.
}
