// Result panels: the test results table (failures first), the arena leaderboard, a version's
// check on save and a behaviour diff. One panel of each kind, reused, so repeated runs don't
// pile up tabs. Scripts stay off.
import { arenaHtml, behaviourHtml, checkCasesHtml, testResultsHtml } from './html';
import type { ArenaReport, BehaviourDiff, TestRun, VersionCheck } from './types';
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

  showCheck(name: string, version: number, check: VersionCheck): void {
    this.show('check', `Check: ${name} v${version}`, checkCasesHtml(name, version, check));
  }

  showBehaviour(name: string, diff: BehaviourDiff): void {
    this.show('behaviour', `Behaviour: ${name} v${diff.from_version} ↔ v${diff.to_version}`, behaviourHtml(name, diff));
  }

  dispose(): void {
    for (const panel of this.panels.values()) {
      panel.dispose();
    }
  }
}
