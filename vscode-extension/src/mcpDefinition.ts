// Offers `promstack mcp` to VS Code's own MCP support, so Copilot chat and any agent in the
// editor get the same tools without a hand-written mcp.json.
import { currentLaunch, readSettings } from './connection';
import { vscode } from './vs';

export const PROVIDER_ID = 'promstack.mcp';

export class McpDefinitionProvider implements vscode.McpServerDefinitionProvider<vscode.McpStdioServerDefinition> {
  private readonly emitter = new vscode.EventEmitter<void>();
  readonly onDidChangeMcpServerDefinitions = this.emitter.event;

  constructor(private readonly version: string) {}

  refresh(): void {
    this.emitter.fire();
  }

  provideMcpServerDefinitions(): vscode.McpStdioServerDefinition[] {
    if (!readSettings().registerMcpServer) {
      return [];
    }
    const launch = currentLaunch();
    const server = new vscode.McpStdioServerDefinition('PromStack', launch.command, launch.args, launch.env, this.version);
    if (launch.cwd) {
      server.cwd = vscode.Uri.file(launch.cwd);
    }
    return [server];
  }

  dispose(): void {
    this.emitter.dispose();
  }
}

/** Registers the provider where the editor has the API (VS Code 1.101+); a no-op elsewhere. */
export function registerMcpDefinitions(context: vscode.ExtensionContext): McpDefinitionProvider | undefined {
  const lm = (vscode as { lm?: { registerMcpServerDefinitionProvider?: typeof vscode.lm.registerMcpServerDefinitionProvider } }).lm;
  if (!lm?.registerMcpServerDefinitionProvider) {
    return undefined;
  }
  const provider = new McpDefinitionProvider(String(context.extension.packageJSON.version ?? '0'));
  context.subscriptions.push(provider, lm.registerMcpServerDefinitionProvider(PROVIDER_ID, provider));
  return provider;
}
