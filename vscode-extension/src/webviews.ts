// Result panels: the test results table (failures first) and the arena leaderboard. One panel
// of each kind, reused, so repeated runs don't pile up tabs. Scripts stay off.
import { arenaHtml, testResultsHtml } from './html';
import type { ArenaReport, TestRun } from './types';
import { vscode } from './vs';

export class ResultPanels implements vscode.Disposable {
  private readonly panels = new Map<string, vscode.WebviewPanel>();

  private show(kind: string, title: string, html: string): void {
    let panel = this.panels.get(kind);
    if (!panel) {
      panel = vscode.window.createWebviewPanel(`promstack.${kind}`, title, vscode.ViewColumn.Beside, { enableScripts: false, retainContextWhenHidden: false });
      panel.onDidDispose(() => this.panels.delete(kind));
      this.panels.set(kind, panel);
    }
    panel.title = title;
    panel.webview.html = html;
    panel.reveal(undefined, true);
  }

  showTestRun(run: TestRun): void {
    this.show('tests', `Tests: ${run.suite}`, testResultsHtml(run));
  }

  showArena(report: ArenaReport): void {
    this.show('arena', `Arena: ${report.models.join(' vs ')}`, arenaHtml(report));
  }

  dispose(): void {
    for (const panel of this.panels.values()) {
      panel.dispose();
    }
  }
}
