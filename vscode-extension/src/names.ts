// Which prompt a file is: its path under the prompts folder without the format's suffix,
// exactly as the watcher names it (docs/watcher.md): prompts/support/refund.prompt.md is
// `support/refund`. No `vscode` import.

// Longest first, so `.prompt.md` wins over `.md`.
export const PROMPT_SUFFIXES = [
  '.prompt.yaml', '.prompt.yml', '.prompt.md', '.prompty', '.prompt',
  '.jinja2', '.jinja', '.j2', '.txt', '.md',
];

function posix(path: string): string {
  return path.replace(/\\/g, '/');
}

function isAbsolute(path: string): boolean {
  return /^([a-zA-Z]:)?\//.test(path);
}

/**
 * The prompt name of `filePath` (absolute, or relative to the workspace) when it lies under
 * `promptsFolder` (absolute, or relative to `workspaceRoot`) and has a prompt suffix.
 */
export function promptNameForFile(filePath: string, workspaceRoot: string, promptsFolder = 'prompts'): string | undefined {
  const root = posix(workspaceRoot).replace(/\/+$/, '');
  let folder = posix(promptsFolder).replace(/\/+$/, '').replace(/^\.\//, '');
  if (!isAbsolute(folder)) {
    folder = `${root}/${folder}`;
  }
  let file = posix(filePath);
  if (!isAbsolute(file)) {
    file = `${root}/${file}`;
  }
  if (!file.startsWith(folder + '/')) {
    return undefined;
  }
  const rel = file.slice(folder.length + 1);
  const segments = rel.split('/');
  if (segments.some((s) => s.startsWith('.') || s.length === 0)) {
    return undefined; // hidden files and folders are never prompts (the watcher ignores them)
  }
  const lower = rel.toLowerCase();
  const suffix = PROMPT_SUFFIXES.find((s) => lower.endsWith(s));
  if (!suffix || rel.length === suffix.length) {
    return undefined;
  }
  const name = rel.slice(0, rel.length - suffix.length);
  return name.endsWith('/') ? undefined : name;
}

/**
 * The template part of a prompt file's text, for comparing with the stored head: the body after
 * YAML front matter for `.prompt.md`, the whole text for plain formats, and undefined for
 * formats whose template is not a slice of the file (yml, prompty, dotprompt).
 */
export function templateOfFile(fileName: string, text: string): string | undefined {
  const lower = fileName.toLowerCase();
  if (lower.endsWith('.prompt.md')) {
    const m = /^---\r?\n[\s\S]*?\r?\n---\r?\n?/.exec(text);
    return m ? text.slice(m[0].length) : text;
  }
  if (['.txt', '.md', '.j2', '.jinja', '.jinja2'].some((s) => lower.endsWith(s)) && !lower.endsWith('.prompt.md')) {
    return text;
  }
  return undefined;
}

/** Text equality as the store sees it: line endings and trailing whitespace don't count. */
export function sameTemplate(a: string, b: string): boolean {
  const norm = (s: string) => s.replace(/\r\n/g, '\n').replace(/\s+$/, '');
  return norm(a) === norm(b);
}
