// Helpers for the contract test: the real `promstack mcp` (from the repo's venv unless
// PROMSTACK_COMMAND says otherwise), a temporary store, and the fake LLM server from tests/.
import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

export const REPO = path.resolve(__dirname, '../../../..');

export function promstackCommand(): string {
  if (process.env.PROMSTACK_COMMAND) {
    return process.env.PROMSTACK_COMMAND;
  }
  const venv = path.join(REPO, '.venv', 'bin', 'promstack');
  return fs.existsSync(venv) ? venv : 'promstack';
}

export function pythonCommand(): string {
  const venv = path.join(REPO, '.venv', 'bin', 'python');
  return fs.existsSync(venv) ? venv : 'python3';
}

export function tempWorkspace(): { dir: string; db: string; cleanup: () => void } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'promstack-vscode-'));
  return { dir, db: path.join(dir, '.promstack', 'promstack.db'), cleanup: () => fs.rmSync(dir, { recursive: true, force: true }) };
}

/** tests/fake_llm.py as a process: an OpenAI-compatible server on 127.0.0.1. */
export async function startFakeLlm(): Promise<{ url: string; stop: () => void }> {
  const child: ChildProcess = spawn(pythonCommand(), [path.join(REPO, 'tests', 'fake_llm.py'), '--port', '0'], { stdio: ['ignore', 'pipe', 'inherit'] });
  const port = await new Promise<number>((resolve, reject) => {
    let seen = '';
    const timer = setTimeout(() => reject(new Error(`fake LLM did not start: ${seen}`)), 15_000);
    child.stdout!.on('data', (d: Buffer) => {
      seen += d.toString();
      const m = /PORT (\d+)/.exec(seen);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    });
    child.on('exit', (code) => reject(new Error(`fake LLM exited with ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}/v1`, stop: () => child.kill('SIGTERM') };
}
