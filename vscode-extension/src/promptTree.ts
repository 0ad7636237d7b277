// The PromStack view: folders -> prompts -> versions, reloaded when the store changes.
import type { Connection } from './connection';
import { buildTree, presentVersion, shownLabels, versionNodes, type PromptNode, type TreeNode } from './tree';
import type { PromptSummary, VersionSummary } from './types';
import { versionUri } from './uris';
import { vscode } from './vs';

export class PromptTreeProvider implements vscode.TreeDataProvider<TreeNode> {
  private readonly emitter = new vscode.EventEmitter<TreeNode | undefined>();
  readonly onDidChangeTreeData = this.emitter.event;
  private readonly historyLoaded = new vscode.EventEmitter<{ name: string; versions: VersionSummary[] }>();
  /** A prompt's history was fetched for the tree (its versions carry their checks). */
  readonly onDidLoadHistory = this.historyLoaded.event;
  private prompts?: Promise<PromptSummary[] | undefined>;
  private readonly parents = new Map<string, TreeNode | undefined>();
  private readonly nodes = new Map<string, TreeNode>();

  constructor(private readonly connection: Connection) {}

  refresh(): void {
    this.prompts = undefined;
    this.emitter.fire(undefined);
  }

  /** The prompt listing, fetched once per refresh and shared by the tree and the commands. */
  listing(): Promise<PromptSummary[] | undefined> {
    this.prompts ??= this.connection.run((c) => c.listPrompts());
    return this.prompts;
  }

  static id(node: TreeNode): string {
    switch (node.kind) {
      case 'folder': return `folder:${node.path}`;
      case 'prompt': return `prompt:${node.name}`;
      case 'version': return `version:${node.name}@${node.version.version}`;
    }
  }

  getTreeItem(node: TreeNode): vscode.TreeItem {
    const id = PromptTreeProvider.id(node);
    if (node.kind === 'folder') {
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Expanded);
      item.id = id;
      item.contextValue = 'folder';
      item.iconPath = vscode.ThemeIcon.Folder;
      return item;
    }
    if (node.kind === 'prompt') {
      const p = node.prompt;
      const item = new vscode.TreeItem(node.label, vscode.TreeItemCollapsibleState.Collapsed);
      item.id = id;
      item.contextValue = 'prompt';
      item.iconPath = new vscode.ThemeIcon('symbol-string');
      const labels = shownLabels(p.labels).map(([l, v]) => `${l}=v${v}`).join(' ');
      item.description = `v${p.head ?? '?'}${labels ? ` · ${labels}` : ''}`;
      item.tooltip = `${p.name} (#${p.id}): ${p.versions} versions, head v${p.head ?? '?'}\nbranches: ${p.branches.join(', ')}${p.description ? `\n${p.description}` : ''}`;
      return item;
    }
    const shown = presentVersion(node);
    const item = new vscode.TreeItem(shown.label, vscode.TreeItemCollapsibleState.None);
    item.id = id;
    item.description = shown.description;
    item.tooltip = shown.tooltip;
    item.contextValue = shown.contextValue;
    item.iconPath = shown.icon
      ? new vscode.ThemeIcon(shown.icon.id, shown.icon.color ? new vscode.ThemeColor(shown.icon.color) : undefined)
      : new vscode.ThemeIcon(node.labels.length ? 'tag' : node.isHead ? 'circle-filled' : 'git-commit');
    item.resourceUri = vscode.Uri.parse(versionUri(node.name, node.version.version));
    item.command = { command: 'promstack.openVersion', title: 'Open Version', arguments: [node] };
    return item;
  }

  async getChildren(node?: TreeNode): Promise<TreeNode[]> {
    let children: TreeNode[];
    if (!node) {
      children = buildTree((await this.listing()) ?? []);
    } else if (node.kind === 'folder') {
      children = node.children;
    } else if (node.kind === 'prompt') {
      const history = await this.connection.run((c) => c.getHistory(node.name));
      children = history ? versionNodes(node.name, history.versions, node.prompt.labels, node.prompt.head) : [];
      if (history) {
        this.historyLoaded.fire({ name: node.name, versions: history.versions });
      }
    } else {
      children = [];
    }
    for (const child of children) {
      this.parents.set(PromptTreeProvider.id(child), node);
      this.nodes.set(PromptTreeProvider.id(child), child);
    }
    return children;
  }

  getParent(node: TreeNode): TreeNode | undefined {
    return this.parents.get(PromptTreeProvider.id(node));
  }

  /** The prompt's node, walking the listing so `reveal` can find its parents. */
  async promptNode(name: string): Promise<PromptNode | undefined> {
    const walk = async (nodes: TreeNode[]): Promise<PromptNode | undefined> => {
      for (const n of nodes) {
        if (n.kind === 'prompt' && n.name === name) {
          return n;
        }
        if (n.kind === 'folder' && (name === n.path || name.startsWith(n.path + '/'))) {
          const found = await walk(await this.getChildren(n));
          if (found) {
            return found;
          }
        }
      }
      return undefined;
    };
    return walk(await this.getChildren());
  }
}
