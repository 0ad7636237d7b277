// The one module that imports `vscode`. Everything else reaches the editor through it, so unit
// tests replace this module (require.cache) with a stub and run under plain Node.
import * as vscode from 'vscode';

export { vscode };
