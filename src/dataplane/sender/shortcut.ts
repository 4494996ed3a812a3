// The Worker's per-frame decision, pure: send this captured frame here, or hand it to the main
// thread (see snapshot.ts for which frames are the Worker's).
//
// The main thread's MAC table refreshes a local MAC whenever a frame from it passes (entries of
// MACs not heard from expire), so for each local MAC the Worker sends for, it reports the MAC as
// seen at most once per `noteEveryMs` (a small message, not the frame: handing one frame of a
// flow to the other thread would reorder it behind the frames the Worker sends meanwhile, and TCP
// takes reordering for loss).
import type { Mac } from '../forwarder/mac.js';

export const DEFAULT_NOTE_EVERY_MS = 1000;

export class CaptureShortcut<Route> {
  private routes: ReadonlyMap<Mac, Route> = new Map();
  private locals: ReadonlySet<Mac> = new Set();
  private readonly noted = new Map<Mac, number>();

  constructor(private readonly noteEveryMs = DEFAULT_NOTE_EVERY_MS) {}

  /** A new snapshot's destinations and local MACs. */
  apply(routes: ReadonlyMap<Mac, Route>, locals: ReadonlySet<Mac>): void {
    this.routes = routes;
    this.locals = locals;
    for (const mac of this.noted.keys()) if (!locals.has(mac)) this.noted.delete(mac);
  }

  /** Whether any frame can be the Worker's (else the caller need not look at frames). */
  get active(): boolean {
    return this.routes.size > 0 && this.locals.size > 0;
  }

  /** The route to send a frame from `src` to `dst` on, or undefined: the main thread's. */
  decide(dst: Mac, src: Mac): Route | undefined {
    if (!this.locals.has(src)) return undefined;
    return this.routes.get(dst);
  }

  /** After a frame from `src` was sent here: true if the main thread should hear that `src` is alive. */
  noteDue(src: Mac, now: number): boolean {
    const last = this.noted.get(src);
    if (last !== undefined && now - last < this.noteEveryMs) return false;
    this.noted.set(src, now);
    return true;
  }
}
