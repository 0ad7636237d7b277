// `promstack:/support/refund/3` documents: a version's config and template, read-only. Versions
// never change, so each is fetched once; refresh() drops the cache when the store is swapped.
import type { Connection } from './connection';
import { versionDocument } from './format';
import { SCHEME, parseVersionPath } from './uris';
import { vscode } from './vs';

export class VersionDocumentProvider implements vscode.TextDocumentContentProvider {
  static readonly scheme = SCHEME;
  private readonly emitter = new vscode.EventEmitter<vscode.Uri>();
  readonly onDidChange = this.emitter.event;
  private readonly cache = new Map<string, string>();

  constructor(private readonly connection: Connection) {}

  refresh(): void {
    const uris = [...this.cache.keys()];
    this.cache.clear();
    for (const uri of uris) {
      this.emitter.fire(vscode.Uri.parse(uri));
    }
  }

  async provideTextDocumentContent(uri: vscode.Uri): Promise<string> {
    const key = uri.toString();
    const cached = this.cache.get(key);
    if (cached !== undefined) {
      return cached;
    }
    const ref = parseVersionPath(uri.path);
    if (!ref) {
      return `Not a PromStack version: ${uri.toString()} (expected promstack:/<prompt name>/<version>)\n`;
    }
    try {
      const found = await this.connection.get().getPrompt(ref.name, { version: ref.version });
      const text = versionDocument(found);
      this.cache.set(key, text);
      return text;
    } catch (error) {
      this.connection.report(error);
      return `Could not load ${ref.name} v${ref.version}: ${(error as Error).message}\n`;
    }
  }
}
