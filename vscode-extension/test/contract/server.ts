// Helpers for the contract test: the real `promstack mcp` (from the repo's venv unless
// PROMSTACK_COMMAND says otherwise), a temporary store, the fake LLM server from tests/, and a
// real team server (`promstack serve`) with named tokens.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as net from 'node:net';
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

/** Makes a named token on the store `db` (`promstack token create NAME --role ROLE`); returns it. */
export function createToken(db: string, name: string, role: string): string {
  const out = execFileSync(promstackCommand(), ['token', 'create', name, '--role', role, '--db', db, '--json'], { encoding: 'utf8' });
  return (JSON.parse(out) as { token: string }).token;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as net.AddressInfo;
      probe.close(() => resolve(port));
    });
  });
}

export interface TeamServer {
  url: string;
  /** Stops the server and waits for it to exit. */
  stop: () => Promise<void>;
}

/** A real `promstack serve` on the store `db` (as tests/team_server.py starts one for the Python
 *  tests), once it answers /healthz; 401 counts, as the store may already ask for a token. */
export async function startTeamServer(db: string, cwd: string): Promise<TeamServer> {
  const port = await freePort();
  const env: NodeJS.ProcessEnv = { ...process.env, PROMSTACK_DB: db };
  // A client's variables in the test's environment must not change what the server is.
  for (const name of ['PROMSTACK_URL', 'PROMSTACK_TOKEN', 'PROMSTACK_SERVE_TOKEN']) {
    delete env[name];
  }
  const child = spawn(promstackCommand(), ['serve', '--port', String(port), '--no-watch'], { cwd, env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    }
  };
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`promstack serve exited with ${child.exitCode}: ${stderr}`);
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`promstack serve did not answer on ${url}: ${stderr}`);
    }
    try {
      const r = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(1_000) });
      if (r.status === 200 || r.status === 401) {
        return { url, stop };
      }
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}
