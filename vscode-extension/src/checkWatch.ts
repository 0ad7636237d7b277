// Follows the checks on save: looks at a prompt's history when a save moved its head, looks
// again while a check runs (the server announces saves, not finished checks), refreshes the tree
// when a check finishes, and says once when a save broke cases.
import { BreakWatch, brokeMessage, pendingVersions, pollDelayMs } from './checks';
import type { Connection } from './connection';
import type { PromptTreeProvider } from './promptTree';
import type { VersionCheck, VersionSummary } from './types';
import { vscode } from './vs';

/** The history looked at for new versions: saves arrive one by one, so the newest few suffice. */
const RECENT = 20;

export interface BrokeActions {
  showCases(name: string, version: number, check: VersionCheck): void;
  compare(name: string, from: number, to: number, suite: string | undefined): void;
}

export class CheckWatch implements vscode.Disposable {
  private readonly breaks = new BreakWatch();
  private readonly heads = new Map<string, number | null>();
  private readonly pending = new Map<string, string>();
  private readonly polls = new Map<string, { attempt: number; timer: ReturnType<typeof setTimeout> }>();
  private readonly subscriptions: vscode.Disposable[] = [];
  private disposed = false;

  constructor(private readonly connection: Connection, private readonly tree: PromptTreeProvider, private readonly actions: BrokeActions) {
    this.subscriptions.push(tree.onDidLoadHistory(({ name, versions }) => this.observe(name, versions, false)));
  }

  /** The store changed: prompts whose head moved get their recent history looked at. */
  async storeChanged(): Promise<void> {
    const prompts = await this.tree.listing();
    if (!prompts || this.disposed) {
      return;
    }
    const firstLook = this.heads.size === 0;
    const moved = prompts.filter((p) => !p.archived && this.heads.has(p.name) && this.heads.get(p.name) !== p.head);
    for (const p of prompts) {
      this.heads.set(p.name, p.head);
    }
    if (!firstLook) {
      await Promise.all(moved.map((p) => this.look(p.name)));
    }
  }

  private async look(name: string): Promise<void> {
    // Quietly: a background look must not raise error messages; the tree shows those.
    const history = await this.connection.get().getHistory(name, { limit: RECENT }).catch(() => undefined);
    if (history && !this.disposed) {
      this.observe(name, history.versions, true);
    }
  }

  private observe(name: string, versions: VersionSummary[], fromPoll: boolean): void {
    for (const v of this.breaks.observe(name, versions)) {
      this.announce(name, v);
    }
    const waiting = pendingVersions(versions).join(',');
    const before = this.pending.get(name) ?? '';
    this.pending.set(name, waiting);
    if (fromPoll && waiting !== before) {
      // A check started or finished: the tree's rows (badge, icon, tooltip) change.
      this.tree.refresh();
    }
    if (waiting) {
      this.schedule(name, waiting === before);
    } else {
      this.stopPolling(name);
    }
  }

  private schedule(name: string, same: boolean): void {
    const previous = this.polls.get(name);
    if (previous && same) {
      return; // a look is already due
    }
    if (previous) {
      clearTimeout(previous.timer);
    }
    const attempt = previous && same ? previous.attempt + 1 : 0;
    this.arm(name, attempt);
  }

  private arm(name: string, attempt: number): void {
    const delay = pollDelayMs(attempt);
    if (delay === undefined || this.disposed) {
      this.polls.delete(name);
      return;
    }
    const timer = setTimeout(() => {
      void this.look(name).then(() => {
        // Still waiting on the same versions: look again, later.
        const entry = this.polls.get(name);
        if (entry?.timer === timer && this.pending.get(name)) {
          this.arm(name, attempt + 1);
        }
      });
    }, delay);
    this.polls.set(name, { attempt, timer });
  }

  private stopPolling(name: string): void {
    const entry = this.polls.get(name);
    if (entry) {
      clearTimeout(entry.timer);
      this.polls.delete(name);
    }
  }

  private announce(name: string, v: VersionSummary): void {
    const check = v.check!;
    const parent = check.parent_version ?? v.parent;
    const choices = parent ? ['Show Cases', 'Compare Behaviour'] : ['Show Cases'];
    void vscode.window.showWarningMessage(`PromStack: ${brokeMessage(name, v.version, check)}`, ...choices).then((choice) => {
      if (choice === 'Show Cases') {
        this.actions.showCases(name, v.version, check);
      } else if (choice === 'Compare Behaviour' && parent) {
        this.actions.compare(name, parent, v.version, check.suite ?? undefined);
      }
    });
  }

  dispose(): void {
    this.disposed = true;
    for (const name of [...this.polls.keys()]) {
      this.stopPolling(name);
    }
    this.subscriptions.forEach((s) => s.dispose());
  }
}
