// A stand-in for the `vscode` module, installed in place of src/vs.ts (the extension's one
// wrapper), so providers run under plain Node. Only what the tested modules touch.
import * as path from 'node:path';

export class EventEmitter<T> {
  private listeners: Array<(e: T) => void> = [];
  fired: T[] = [];
  event = (listener: (e: T) => void) => {
    this.listeners.push(listener);
    return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== listener)) };
  };
  fire(e: T): void {
    this.fired.push(e);
    this.listeners.forEach((l) => l(e));
  }
  dispose(): void {
    this.listeners = [];
  }
}

export class Uri {
  constructor(readonly scheme: string, readonly path: string, readonly fsPath: string) {}
  static parse(value: string): Uri {
    const m = /^([a-z][\w+.-]*):(.*)$/i.exec(value);
    if (!m) {
      throw new Error(`not a URI: ${value}`);
    }
    const p = m[2].replace(/^\/\/[^/]*/, '');
    return new Uri(m[1], p, decodeURIComponent(p));
  }
  static file(p: string): Uri {
    return new Uri('file', path.resolve(p), path.resolve(p));
  }
  toString(): string {
    return `${this.scheme}:${this.path}`;
  }
}

export class TreeItem {
  id?: string;
  description?: string;
  tooltip?: string;
  contextValue?: string;
  iconPath?: unknown;
  resourceUri?: Uri;
  command?: { command: string; title: string; arguments?: unknown[] };
  constructor(readonly label: string, readonly collapsibleState: number) {}
}

export class ThemeColor {
  constructor(readonly id: string) {}
}

export class ThemeIcon {
  static Folder = new ThemeIcon('folder');
  constructor(readonly id: string, readonly color?: ThemeColor) {}
}

export const TreeItemCollapsibleState = { None: 0, Collapsed: 1, Expanded: 2 };

export interface Recorded {
  errors: string[];
  warnings: string[];
  infos: string[];
  quickPicks: Array<{ items: unknown[]; options: unknown }>;
}

export function makeStub(workspaceRoot: string, settings: Record<string, unknown> = {}) {
  const recorded: Recorded = { errors: [], warnings: [], infos: [], quickPicks: [] };
  const pickAnswers: unknown[] = [];
  const stub = {
    EventEmitter, Uri, TreeItem, ThemeIcon, ThemeColor, TreeItemCollapsibleState,
    window: {
      activeTextEditor: undefined as unknown,
      showErrorMessage: async (m: string) => { recorded.errors.push(m); return undefined; },
      showWarningMessage: async (m: string) => { recorded.warnings.push(m); return undefined; },
      showInformationMessage: async (m: string) => { recorded.infos.push(m); return undefined; },
      showQuickPick: async (items: unknown[], options: unknown) => { recorded.quickPicks.push({ items, options }); return pickAnswers.shift(); },
    },
    workspace: {
      workspaceFolders: [{ uri: Uri.file(workspaceRoot) }],
      getConfiguration: () => ({ get: <T>(key: string, fallback: T): T => (key in settings ? settings[key] as T : fallback) }),
      registerTextDocumentContentProvider: () => ({ dispose() {} }),
    },
    commands: { executeCommand: async () => undefined },
  };
  return { stub, recorded, pickAnswers };
}

/** Puts `stub` where src/vs.js would load, before any module that imports it. */
export function installStub(stub: unknown): void {
  const vsPath = require.resolve('../../src/vs');
  require.cache[vsPath] = { id: vsPath, filename: vsPath, loaded: true, exports: { vscode: stub } } as NodeJS.Module;
}
