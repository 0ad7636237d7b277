// The status bar item for the active prompt file: its prompt, head version, and whether the
// file has changes the store doesn't have. Clicking opens the history.
import type { Connection } from './connection';
import { readSettings, workspaceRoot } from './connection';
import { versionDocument } from './format';
import { promptNameForFile, sameTemplate, templateOfFile } from './names';
import type { PromptTreeProvider } from './promptTree';
import { statusText } from './status';
import { vscode } from './vs';

export class PromptStatusBar implements vscode.Disposable {
  private readonly item = vscode.window.createStatusBarItem('promstack.status', vscode.StatusBarAlignment.Left, 50);
  private readonly heads = new Map<string, string>(); // `${name}@${version}` -> template text
  private timer?: NodeJS.Timeout;

  constructor(private readonly connection: Connection, private readonly tree: PromptTreeProvider) {
    this.item.name = 'PromStack prompt';
  }

  /** Recomputes soon; typing calls this on every keystroke, so it waits for a pause. */
  refresh(delayMs = 150): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => void this.update(), delayMs);
  }

  private async update(): Promise<void> {
    const editor = vscode.window.activeTextEditor;
    const root = workspaceRoot();
    const doc = editor?.document;
    const name = doc && doc.uri.scheme === 'file' && root ? promptNameForFile(doc.uri.fsPath, root, readSettings().promptsFolder) : undefined;
    if (!doc || !name) {
      this.item.hide();
      return;
    }
    const prompt = (await this.tree.listing())?.find((p) => p.name === name && !p.archived);
    let differs: boolean | undefined;
    const body = templateOfFile(doc.fileName, doc.getText());
    if (prompt?.head && body !== undefined) {
      const key = `${name}@${prompt.head}`;
      let head = this.heads.get(key);
      if (head === undefined) {
        const found = await this.connection.get().getPrompt(name, { version: prompt.head }).catch(() => undefined);
        if (found) {
          head = typeof found.template === 'string' ? found.template : versionDocument({ ...found, model_config: {} });
          this.heads.set(key, head);
        }
      }
      differs = head === undefined ? undefined : !sameTemplate(head, body);
    }
    if (vscode.window.activeTextEditor?.document !== doc) {
      return; // the editor changed while we asked
    }
    const shown = statusText({ name, head: prompt?.head ?? null, dirty: doc.isDirty, differs, untracked: !prompt });
    this.item.text = shown.text;
    this.item.tooltip = shown.tooltip;
    this.item.command = prompt ? { command: 'promstack.showHistory', title: 'Show History', arguments: [doc.uri] } : undefined;
    this.item.show();
  }

  dispose(): void {
    clearTimeout(this.timer);
    this.item.dispose();
  }
}
