// What the status bar says about the active prompt file. No `vscode` import.

export interface FileState {
  name: string;
  head: number | null;
  /** The editor has unsaved edits. */
  dirty: boolean;
  /** The file's template differs from the stored head; undefined when it can't be told. */
  differs: boolean | undefined;
  /** The store has no such prompt yet. */
  untracked: boolean;
}

export function statusText(s: FileState): { text: string; tooltip: string } {
  if (s.untracked) {
    return {
      text: `$(versions) ${s.name}: not versioned`,
      tooltip: `${s.name} is not in the PromStack store yet; 'promstack watch' versions it on save.`,
    };
  }
  const marks: string[] = [];
  if (s.dirty) {
    marks.push('unsaved');
  }
  if (s.differs) {
    marks.push(`≠ v${s.head}`);
  }
  const tail = marks.length ? ` (${marks.join(', ')})` : '';
  const state = s.dirty
    ? 'The editor has unsaved changes.'
    : s.differs
      ? `The saved file differs from the stored head v${s.head}; it becomes a new version when the watcher sees it.`
      : s.differs === false
        ? `The file matches the stored head v${s.head}.`
        : '';
  return {
    text: `$(versions) ${s.name} v${s.head ?? '?'}${tail}`,
    tooltip: `PromStack: ${s.name}, head of main v${s.head ?? '?'}. ${state}\nClick for its history.`,
  };
}
