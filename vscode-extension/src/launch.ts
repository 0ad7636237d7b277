// How the extension starts `promstack mcp`, and what it tells a person when that fails.
// No `vscode` import: settings arrive as a plain object.
import * as path from 'node:path';

/** The key of the team server's token in VS Code's secret storage (never in settings). */
export const TOKEN_SECRET = 'promstack.serverToken';

export interface ServerSettings {
  /** `promstack` on PATH, or a full path to the console script. */
  command: string;
  /** A Python interpreter with PromStack installed; wins over `command` when set. */
  pythonPath: string;
  /** The store file (PROMSTACK_DB); empty for the workspace's own. */
  store: string;
  /** A team server (PROMSTACK_URL): the MCP server then serves that server's store. */
  serverUrl?: string;
}

export interface Launch {
  command: string;
  args: string[];
  cwd?: string;
  /** Only the variables this extension sets; the caller merges them into the environment. */
  env: Record<string, string>;
  /** How the launch reads in messages: `promstack mcp` or `/usr/bin/python3 -m mcp_server`. */
  display: string;
}

function expand(value: string, workspaceRoot: string | undefined, home: string | undefined): string {
  let out = value.trim();
  if (workspaceRoot) {
    out = out.replace(/\$\{workspaceFolder\}/g, workspaceRoot);
  }
  if (home && (out === '~' || out.startsWith('~/'))) {
    out = home + out.slice(1);
  }
  return out;
}

function absolute(value: string, workspaceRoot: string | undefined): string {
  if (!value || path.isAbsolute(value) || !workspaceRoot) {
    return value;
  }
  // A bare name (`promstack`, `python3`) is looked up on PATH; only paths are made absolute.
  return value.includes('/') || value.includes('\\') ? path.resolve(workspaceRoot, value) : value;
}

/** The process to start for the workspace at `workspaceRoot` with these settings; `token` (from
 *  VS Code's secret storage) goes with a server URL as PROMSTACK_TOKEN. */
export function resolveLaunch(settings: ServerSettings, workspaceRoot: string | undefined, home?: string, token?: string): Launch {
  const env: Record<string, string> = {};
  const store = expand(settings.store ?? '', workspaceRoot, home);
  const serverUrl = (settings.serverUrl ?? '').trim().replace(/\/+$/, '');
  if (serverUrl) {
    env.PROMSTACK_URL = serverUrl;
    if (token) {
      env.PROMSTACK_TOKEN = token;
    }
  } else if (store) {
    env.PROMSTACK_DB = workspaceRoot && !path.isAbsolute(store) ? path.resolve(workspaceRoot, store) : store;
  }
  const python = absolute(expand(settings.pythonPath ?? '', workspaceRoot, home), workspaceRoot);
  if (python) {
    return { command: python, args: ['-m', 'mcp_server'], cwd: workspaceRoot, env, display: `${python} -m mcp_server` };
  }
  const command = absolute(expand(settings.command || 'promstack', workspaceRoot, home), workspaceRoot);
  return { command, args: ['mcp'], cwd: workspaceRoot, env, display: `${command} mcp` };
}

export interface StartFailure {
  message: string;
  fix: string;
  /** Which setting the fix is about, for an "Open Settings" button. */
  setting?: string;
}

/**
 * A sentence for a server that could not start or died at once, from the spawn error and the
 * last lines it wrote on stderr.
 */
export function explainStartFailure(launch: Launch, error: unknown, stderrTail: string): StartFailure {
  const err = error as { code?: string; message?: string } | undefined;
  const text = `${err?.message ?? String(error ?? '')}\n${stderrTail}`;
  const usingPython = launch.args[0] === '-m';
  if (err?.code === 'ENOENT' || /ENOENT|not found|No such file/i.test(err?.message ?? '')) {
    return usingPython
      ? {
        message: `PromStack: the Python interpreter '${launch.command}' was not found.`,
        fix: 'Set promstack.pythonPath to an interpreter that exists (e.g. .venv/bin/python), or clear it to use promstack.command.',
        setting: 'promstack.pythonPath',
      }
      : {
        message: `PromStack: the command '${launch.command}' was not found, so the server (${launch.display}) could not start.`,
        fix: "Install PromStack (pip install promstack) or set promstack.command to the full path of 'promstack', e.g. ${workspaceFolder}/.venv/bin/promstack.",
        setting: 'promstack.command',
      };
  }
  if (err?.code === 'EACCES') {
    return {
      message: `PromStack: '${launch.command}' is not executable.`,
      fix: 'Point promstack.command at the promstack script in your environment (chmod +x it), or set promstack.pythonPath.',
      setting: usingPython ? 'promstack.pythonPath' : 'promstack.command',
    };
  }
  if (/No module named ['"]?(mcp_server|promstack|mcp)\b/.test(text)) {
    return {
      message: `PromStack: ${launch.command} has no PromStack installed (${/No module named ['"]?[\w.]+/.exec(text)?.[0]}).`,
      fix: `Run '${launch.command} -m pip install promstack', or set promstack.pythonPath to the interpreter of the environment that has it.`,
      setting: 'promstack.pythonPath',
    };
  }
  if (/No such command ['"]?mcp/.test(text)) {
    return {
      message: `PromStack: '${launch.command}' has no 'mcp' command; it is an older PromStack or another program.`,
      fix: "Upgrade PromStack (pip install -U promstack), or point promstack.command at the right 'promstack'.",
      setting: 'promstack.command',
    };
  }
  const last = stderrTail.trim().split('\n').filter(Boolean).pop();
  return {
    message: `PromStack: the server (${launch.display}) stopped${last ? `: ${last}` : ''}.`,
    fix: 'Open the PromStack output channel for its full log; check promstack.command, promstack.pythonPath and promstack.store.',
  };
}

/** A store error from the server (no workspace yet) gets the command that fixes it; so does a
 *  team server's refusal of a missing or unknown token (the token lives in secret storage). */
export function explainToolError(message: string): string {
  if (/needs a token|token is not one this server knows|token .*expired/i.test(message)) {
    return `${message} (run 'PromStack: Set Team Server Token' to store yours)`;
  }
  if (/promstack init|no PromStack (store|workspace)|\.promstack/i.test(message)) {
    return `${message} (run 'promstack init' in the workspace, or set promstack.store)`;
  }
  return message;
}
