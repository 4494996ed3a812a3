// Which peer each MAC address lives at, as learned from the frames that pass: a MAC captured from
// our own bridge is ours; a MAC in a frame that arrives from the overlay is at the peer that
// captured it. Entries expire when no frame refreshes them (Weave: 10 minutes), and the table is
// bounded (the least recently refreshed entry goes first), both through lru-cache.
//
// Time is whatever the caller says it is: every method takes `now` (milliseconds on a monotonic
// clock), and lru-cache reads that value through its `perf` hook. No timers are involved: the
// cache is built with ttlResolution 0 (it would otherwise arm a timer to debounce its clock reads)
// and without ttlAutopurge (a timer per entry); a stale entry is dropped when next looked at, and
// purgeStale() sweeps the rest.
import { LRUCache } from 'lru-cache';
import type { PeerName } from '../../net/peer-name.js';
import type { Mac } from './mac.js';

export interface MacTableOptions {
  /** An entry not refreshed for this long is forgotten; 10 minutes (Weave's maxAge) unless given. */
  readonly maxAgeMs?: number;
  /** At most this many entries; the least recently refreshed goes when a new one needs room. */
  readonly maxEntries?: number;
  /**
   * A frame captured here from a MAC that was seen at another peer less than this long ago is a
   * conflict (dropped and reported, as Weave did: most likely a copy of a frame we injected,
   * coming back through a loop). After that the MAC is taken to have moved here. Weave dropped
   * such frames for as long as the remote entry lived, which cut off a MAC that really moved
   * for up to 10 minutes. `Infinity` gives Weave's behaviour.
   */
  readonly localTakeoverMs?: number;
}

export const DEFAULT_MAC_MAX_AGE_MS = 10 * 60 * 1000;
export const DEFAULT_MAC_MAX_ENTRIES = 65_536;
export const DEFAULT_LOCAL_TAKEOVER_MS = 2_000;

/** What learning a MAC from a captured frame did. */
export type LocalLearning =
  | { readonly kind: 'new' }
  | { readonly kind: 'known' }
  /** Seen at `peer` moments ago: the frame should be dropped, the entry is unchanged. */
  | { readonly kind: 'conflict'; readonly peer: PeerName }
  /** Was at `from` (not heard from lately), now ours. */
  | { readonly kind: 'moved'; readonly from: PeerName };

/** What learning a MAC from a frame of the overlay did. */
export type RemoteLearning =
  | { readonly kind: 'new' }
  | { readonly kind: 'known' }
  /** Was at `from` (possibly ourselves), now at the frame's source peer. */
  | { readonly kind: 'moved'; readonly from: PeerName };

export interface MacEntry {
  readonly mac: Mac;
  readonly peer: PeerName;
  /** Time since a frame last refreshed it. */
  readonly ageMs: number;
}

const NEW: LocalLearning & RemoteLearning = Object.freeze({ kind: 'new' });
const KNOWN: LocalLearning & RemoteLearning = Object.freeze({ kind: 'known' });

// lru-cache treats a start time of 0 as "no TTL", so a caller whose clock starts at 0 (a test, a
// simulation) would get entries that never expire; every time is shifted by this much.
const CLOCK_OFFSET = 1;

export class MacTable {
  readonly maxAgeMs: number;
  readonly maxEntries: number;
  readonly localTakeoverMs: number;
  readonly #cache: LRUCache<Mac, PeerName>;
  #now = CLOCK_OFFSET;

  constructor(
    readonly self: PeerName,
    options: MacTableOptions = {},
  ) {
    this.maxAgeMs = positive('maxAgeMs', options.maxAgeMs ?? DEFAULT_MAC_MAX_AGE_MS);
    this.maxEntries = options.maxEntries ?? DEFAULT_MAC_MAX_ENTRIES;
    if (!Number.isSafeInteger(this.maxEntries) || this.maxEntries < 1) throw new RangeError(`invalid maxEntries ${this.maxEntries}`);
    this.localTakeoverMs = options.localTakeoverMs ?? DEFAULT_LOCAL_TAKEOVER_MS;
    if (!(this.localTakeoverMs >= 0)) throw new RangeError(`invalid localTakeoverMs ${this.localTakeoverMs}`);
    this.#cache = new LRUCache<Mac, PeerName>({
      max: this.maxEntries,
      ttl: this.maxAgeMs,
      ttlResolution: 0,
      ttlAutopurge: false,
      updateAgeOnGet: false,
      perf: { now: () => this.#now },
    });
  }

  /** The peer `mac` is at (ourselves for a local MAC), or undefined if unknown or expired. */
  lookup(mac: Mac, now: number): PeerName | undefined {
    this.#at(now);
    return this.#cache.get(mac);
  }

  /** Learns or refreshes `mac` as ours, from a frame captured on our bridge. */
  learnLocal(mac: Mac, now: number): LocalLearning {
    this.#at(now);
    const held = this.#cache.get(mac);
    if (held === this.self) {
      this.#cache.set(mac, this.self);
      return KNOWN;
    }
    if (held !== undefined) {
      if (this.#age(mac) < this.localTakeoverMs) return { kind: 'conflict', peer: held };
      this.#cache.set(mac, this.self);
      return { kind: 'moved', from: held };
    }
    this.#cache.set(mac, this.self);
    return NEW;
  }

  /** Learns or refreshes `mac` at `peer`, from a frame that `peer` captured; a newer sighting always wins. */
  learnRemote(mac: Mac, peer: PeerName, now: number): RemoteLearning {
    this.#at(now);
    const held = this.#cache.get(mac);
    this.#cache.set(mac, peer);
    if (held === undefined) return NEW;
    return held === peer ? KNOWN : { kind: 'moved', from: held };
  }

  /** Forgets every MAC at `peer` (a peer that left the mesh); returns them. */
  forgetPeer(peer: PeerName): Mac[] {
    const gone: Mac[] = [];
    for (const [mac, at] of this.#cache.entries()) if (at === peer) gone.push(mac);
    for (const mac of gone) this.#cache.delete(mac);
    return gone;
  }

  /** Drops every expired entry now rather than when next looked at; returns how many went. */
  purgeStale(now: number): number {
    this.#at(now);
    const before = this.#cache.size;
    this.#cache.purgeStale();
    return before - this.#cache.size;
  }

  /** Entries held, expired ones included until they are looked at or purged. */
  get size(): number {
    return this.#cache.size;
  }

  /** The live entries, most recently refreshed first: for status and debugging. */
  entries(now: number): MacEntry[] {
    this.#at(now);
    const out: MacEntry[] = [];
    for (const [mac, peer] of this.#cache.entries()) out.push({ mac, peer, ageMs: this.#age(mac) });
    return out;
  }

  #at(now: number): void {
    if (!Number.isFinite(now)) throw new RangeError(`invalid time ${now}`);
    this.#now = now + CLOCK_OFFSET;
  }

  #age(mac: Mac): number {
    return this.maxAgeMs - this.#cache.getRemainingTTL(mac);
  }
}

function positive(what: string, n: number): number {
  if (!(n > 0) || !Number.isFinite(n)) throw new RangeError(`invalid ${what} ${n}: want a positive number`);
  return n;
}
