// Where the IPAM state lives on disk: a JSON snapshot, replaced atomically (write a temporary
// file, fsync it, rename it over the old one, fsync the directory), so that a kill -9 at any
// moment leaves either the old state or the new one, never a torn file; and beside it a journal
// of appended lines (journal.ts), each fdatasync'ed, emptied whenever a new snapshot is durable.
// Snapshot writes are serialised and coalesced: callers that arrive while a write is under way
// share the next one. Appends and snapshot writes never overlap: a snapshot empties the journal,
// which must not happen to a line appended while the snapshot's text was being written.
import { open, rename, mkdir, readFile, unlink, type FileHandle } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

export type LoadResult =
  | { readonly kind: 'absent' }
  | { readonly kind: 'found'; readonly text: string; readonly journal: string };

export class StateStore {
  private writing?: Promise<void>;
  private next?: { text: () => string; done: Promise<void>; resolve: () => void; reject: (e: unknown) => void };
  private seq = 0;
  private journal?: Promise<FileHandle>;
  private readonly appends = new Set<Promise<void>>();

  constructor(readonly path: string) {}

  get journalPath(): string {
    return `${this.path}.journal`;
  }

  async load(): Promise<LoadResult> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'absent' };
      throw err;
    }
    let journal = '';
    try {
      journal = await readFile(this.journalPath, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    return { kind: 'found', text, journal };
  }

  /** Appends one journal line and makes it durable. */
  async append(line: string): Promise<void> {
    while (this.writing) await this.writing.catch(() => undefined);
    // From here to the registration below nothing awaits: pump() sees this append.
    this.journal ??= open(this.journalPath, 'a', 0o600);
    const journal = this.journal;
    const done = (async () => {
      const file = await journal;
      await file.appendFile(line, 'utf8');
      await file.datasync();
    })();
    this.appends.add(done);
    try {
      await done;
    } finally {
      this.appends.delete(done);
    }
  }

  async close(): Promise<void> {
    const journal = this.journal;
    this.journal = undefined;
    await (await journal?.catch(() => undefined))?.close();
  }

  /** Deletes the state and its journal (`weave reset`); returns the paths that were there. */
  async remove(): Promise<string[]> {
    if (this.writing) await this.writing.catch(() => undefined);
    await this.close();
    const removed: string[] = [];
    for (const path of [this.path, this.journalPath]) {
      try {
        await unlink(path);
        removed.push(path);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    }
    return removed;
  }

  /**
   * Moves the file out of the way (keeping it for a person to look at) and returns its new name.
   * Used for a state file of another peer or range, or one that does not parse.
   */
  async setAside(why: string, now = new Date()): Promise<string> {
    const stamp = now.toISOString().replace(/[:.]/g, '-');
    const aside = join(dirname(this.path), `${basename(this.path)}.${why}-${stamp}`);
    await rename(this.path, aside);
    await rename(this.journalPath, `${aside}.journal`).catch(() => undefined);
    return aside;
  }

  /**
   * Writes the state that `text()` returns when the write starts. Resolves once it is durable.
   * Concurrent callers are coalesced into one write of the newest state.
   */
  save(text: () => string): Promise<void> {
    if (this.next) {
      // A write is queued already; it will take the newest state when it starts.
      this.next.text = text;
      return this.next.done;
    }
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    this.next = { text, done, resolve, reject };
    void this.pump();
    return done;
  }

  private async pump(): Promise<void> {
    while (this.writing || this.appends.size > 0) {
      await Promise.allSettled([this.writing, ...this.appends]);
    }
    const job = this.next;
    if (!job) return;
    this.next = undefined;
    this.writing = this.writeAtomically(job.text());
    try {
      await this.writing;
      job.resolve();
    } catch (err) {
      job.reject(err);
    } finally {
      this.writing = undefined;
    }
  }

  private async writeAtomically(text: string): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true });
    const tmp = join(dir, `.${basename(this.path)}.${process.pid}.${this.seq++}.tmp`);
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(text, 'utf8');
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, this.path);
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
    // The snapshot holds everything the journal did: empty it (replaying it would be harmless).
    await this.close();
    const emptied = open(this.journalPath, 'w', 0o600);
    this.journal = emptied;
    await (await emptied).sync();
  }
}
