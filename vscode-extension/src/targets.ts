// Which prompt and version a command acts on: a tree node, an editor-title file URI, the
// active prompt file, or — when none — what the person picks.
import type { Connection } from './connection';
import { readSettings, workspaceRoot } from './connection';
import { promptNameForFile } from './names';
import type { PromptTreeProvider } from './promptTree';
import { presentVersion, versionNodes, type TreeNode } from './tree';
import type { PromptSummary, VersionSummary } from './types';
import { SCHEME, parseVersionPath } from './uris';
import { vscode } from './vs';

export interface VersionTarget {
  name: string;
  version: number;
  summary?: VersionSummary;
}

export class Targets {
  constructor(private readonly connection: Connection, private readonly tree: PromptTreeProvider) {}

  /** The prompt name carried by a command argument, or the active editor's. */
  nameFromArg(arg: unknown): string | undefined {
    const node = arg as TreeNode | undefined;
    if (node && (node.kind === 'prompt' || node.kind === 'version')) {
      return node.name;
    }
    const uri = arg instanceof vscode.Uri ? arg : vscode.window.activeTextEditor?.document.uri;
    if (!uri) {
      return undefined;
    }
    if (uri.scheme === SCHEME) {
      return parseVersionPath(uri.path)?.name;
    }
    const root = workspaceRoot();
    return uri.scheme === 'file' && root ? promptNameForFile(uri.fsPath, root, readSettings().promptsFolder) : undefined;
  }

  versionFromArg(arg: unknown): VersionTarget | undefined {
    const node = arg as TreeNode | undefined;
    if (node?.kind === 'version') {
      return { name: node.name, version: node.version.version, summary: node.version };
    }
    const uri = arg instanceof vscode.Uri ? arg : vscode.window.activeTextEditor?.document.uri;
    if (uri?.scheme === SCHEME) {
      return parseVersionPath(uri.path);
    }
    return undefined;
  }

  async promptSummary(name: string): Promise<PromptSummary | undefined> {
    return (await this.tree.listing())?.find((p) => p.name === name);
  }

  /** The prompt to act on; asks with a quick pick when the argument names none. */
  async prompt(arg: unknown, placeHolder = 'Which prompt?'): Promise<string | undefined> {
    const named = this.nameFromArg(arg);
    if (named) {
      return named;
    }
    const prompts = (await this.tree.listing())?.filter((p) => !p.archived) ?? [];
    if (prompts.length === 0) {
      void vscode.window.showInformationMessage('PromStack: this workspace has no prompts yet.');
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(
      prompts.map((p) => ({ label: p.name, description: `v${p.head ?? '?'} · ${p.versions} versions`, detail: p.description ?? undefined })),
      { placeHolder, matchOnDescription: true },
    );
    return picked?.label;
  }

  /** A prompt's versions as quick-pick items, newest first, with labels. */
  async versionItems(name: string): Promise<Array<vscode.QuickPickItem & { version: VersionSummary }> | undefined> {
    const [history, summary] = await Promise.all([
      this.connection.run((c) => c.getHistory(name)),
      this.promptSummary(name),
    ]);
    if (!history) {
      return undefined;
    }
    return versionNodes(name, history.versions, summary?.labels ?? {}, summary?.head ?? null).map((node) => {
      const shown = presentVersion(node);
      return { label: shown.label, description: shown.description, version: node.version };
    });
  }

  /** Asks for one version of `name`. */
  async pickVersion(name: string, placeHolder: string, exclude?: number): Promise<VersionTarget | undefined> {
    const items = (await this.versionItems(name))?.filter((i) => i.version.version !== exclude);
    if (!items) {
      return undefined;
    }
    const picked = await vscode.window.showQuickPick(items, { placeHolder, matchOnDescription: true });
    return picked ? { name, version: picked.version.version, summary: picked.version } : undefined;
  }

  /** The version an argument names, or the one picked for the prompt it names. */
  async version(arg: unknown, placeHolder: string): Promise<VersionTarget | undefined> {
    const direct = this.versionFromArg(arg);
    if (direct) {
      return direct;
    }
    const name = await this.prompt(arg);
    return name ? this.pickVersion(name, placeHolder) : undefined;
  }
}
