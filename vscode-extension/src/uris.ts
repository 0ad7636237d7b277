// Versions are virtual documents: `promstack:/support/refund/3` is version 3 of the prompt
// `support/refund`. The last path segment is the version, everything before it the name, so
// names with '/' (folders) need no escaping beyond each segment's own.
// No `vscode` import: this module is plain logic, tested under node --test.

export const SCHEME = 'promstack';

export interface VersionRef {
  name: string;
  version: number;
}

/** The path part of a version's URI: `/support/refund/3`. */
export function versionPath(name: string, version: number): string {
  if (!Number.isInteger(version) || version < 1) {
    throw new Error(`a version is a whole number from 1; got ${version}`);
  }
  const segments = name.split('/').filter((s) => s.length > 0);
  if (segments.length === 0) {
    throw new Error('a prompt name cannot be empty');
  }
  return '/' + [...segments.map(encodeURIComponent), String(version)].join('/');
}

/** The full URI string, `promstack:/support/refund/3`. */
export function versionUri(name: string, version: number): string {
  return `${SCHEME}:${versionPath(name, version)}`;
}

/** Reads a version path (or a `promstack:` URI) back; undefined when it names no version. */
export function parseVersionPath(path: string): VersionRef | undefined {
  let rest = path;
  if (rest.startsWith(`${SCHEME}:`)) {
    rest = rest.slice(SCHEME.length + 1);
  }
  rest = rest.split(/[?#]/, 1)[0];
  const segments = rest.split('/').filter((s) => s.length > 0);
  if (segments.length < 2) {
    return undefined;
  }
  const last = segments[segments.length - 1];
  if (!/^[1-9][0-9]*$/.test(last)) {
    return undefined;
  }
  let decoded: string[];
  try {
    decoded = segments.slice(0, -1).map(decodeURIComponent);
  } catch {
    return undefined;
  }
  return { name: decoded.join('/'), version: Number(last) };
}

/** The diff editor's title: `support/refund v2 ↔ v3`. */
export function diffTitle(name: string, left: number, right: number | 'file'): string {
  return `${name} v${left} ↔ ${right === 'file' ? 'working file' : `v${right}`}`;
}
