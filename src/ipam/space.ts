// A peer's handed-out addresses: which container id holds which address. Which addresses the peer
// owns comes from the ring; this module answers the questions that combine the two (the lowest
// free address of the owned space, how much of a span is free, the largest free run).
//
// One address per id: the id is the CNI container id (plus interface, at the shell's choice) or
// `weave:expose` for the bridge. Allocated addresses are also kept sorted, so that a search walks
// only the allocations, never the (up to 2^20 addresses) owned space.
import { type Cidr, cidrEnd } from '../net/ipv4.js';
import { type Interval } from './interval.js';

/** The id under which the bridge's own address (the pods' gateway) is allocated, as in Weave. */
export const EXPOSE_ID = 'weave:expose';

export interface Allocation {
  readonly id: string;
  readonly address: number;
}

export class Space {
  readonly #range: Cidr;
  readonly #byId = new Map<string, number>();
  readonly #byAddress = new Map<number, string>();
  /** Allocated addresses, ascending. */
  #sorted: number[] = [];

  constructor(range: Cidr, allocations: Iterable<Allocation> = []) {
    this.#range = range;
    for (const a of allocations) this.add(a.id, a.address);
  }

  clone(): Space {
    return new Space(this.#range, this.entries());
  }

  get size(): number {
    return this.#byId.size;
  }

  addressOf(id: string): number | undefined {
    return this.#byId.get(id);
  }

  holderOf(address: number): string | undefined {
    return this.#byAddress.get(address);
  }

  /** All allocations, by address. */
  entries(): Allocation[] {
    return this.#sorted.map((address) => ({ id: this.#byAddress.get(address) as string, address }));
  }

  /** True for the first and last address of the range, which are never handed out. */
  isReserved(address: number): boolean {
    return address === this.#range.start || address === cidrEnd(this.#range) - 1;
  }

  /** Records an allocation. Throws if the id or the address is taken (a caller's bug). */
  add(id: string, address: number): void {
    if (this.#byId.has(id)) throw new Error(`id ${id} already holds an address`);
    if (this.#byAddress.has(address)) throw new Error(`address ${address} is already held`);
    if (this.isReserved(address)) throw new Error(`address ${address} is reserved`);
    this.#byId.set(id, address);
    this.#byAddress.set(address, id);
    this.#sorted.splice(this.#lowerBound(address), 0, address);
  }

  /** Forgets the id's address; returns it, or undefined when the id held none. */
  remove(id: string): number | undefined {
    const address = this.#byId.get(id);
    if (address === undefined) return undefined;
    this.#byId.delete(id);
    this.#byAddress.delete(address);
    this.#sorted.splice(this.#lowerBound(address), 1);
    return address;
  }

  /** Index of the first allocated address >= a. */
  #lowerBound(a: number): number {
    let lo = 0;
    let hi = this.#sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((this.#sorted[mid] as number) < a) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }

  /** Allocated addresses in [start, end). */
  countIn(start: number, end: number): number {
    return this.#lowerBound(end) - this.#lowerBound(start);
  }

  /** Addresses in [start, end) that could be handed out now. */
  freeIn(start: number, end: number): number {
    let reserved = 0;
    if (this.isReserved(start)) reserved++;
    const last = cidrEnd(this.#range) - 1;
    if (last !== start && last >= start && last < end) reserved++;
    return Math.max(0, end - start - reserved - this.countIn(start, end));
  }

  /** The lowest address of the given (sorted) intervals that is neither allocated nor reserved. */
  lowestFree(owned: readonly Interval[]): number | undefined {
    for (const span of owned) {
      const first = this.isReserved(span.start) ? span.start + 1 : span.start;
      // Allocated addresses are distinct and sorted, so `address - index` never decreases, and
      // it stays equal to its value at `first` exactly as long as the run from `first` has no
      // gap: a binary search finds the end of that run without walking it.
      const i0 = this.#lowerBound(first);
      let lo = 0; // addresses first .. first+lo-1 are known to be allocated
      let hi = this.#sorted.length - i0;
      while (lo < hi) {
        const mid = (lo + hi + 1) >> 1;
        if ((this.#sorted[i0 + mid - 1] as number) === first + mid - 1) lo = mid;
        else hi = mid - 1;
      }
      const candidate = first + lo;
      if (candidate < span.end && !this.isReserved(candidate)) return candidate;
    }
    return undefined;
  }

  /** The longest run of consecutive free addresses in the intervals (the first such, by address). */
  largestFreeRun(owned: readonly Interval[]): Interval | undefined {
    let best: Interval | undefined;
    const consider = (start: number, end: number): void => {
      if (end > start && (!best || end - start > best.end - best.start)) best = { start, end };
    };
    for (const span of owned) {
      let runStart = span.start;
      let k = this.#lowerBound(span.start);
      // Walk the allocated and reserved addresses inside the span; the gaps are the free runs.
      const blockers: number[] = [];
      if (this.isReserved(span.start)) blockers.push(span.start);
      while (k < this.#sorted.length && (this.#sorted[k] as number) < span.end) blockers.push(this.#sorted[k++] as number);
      const last = cidrEnd(this.#range) - 1;
      if (last > span.start && last < span.end) blockers.push(last);
      for (const b of blockers) {
        consider(runStart, b);
        runStart = b + 1;
      }
      consider(runStart, span.end);
    }
    return best;
  }
}
