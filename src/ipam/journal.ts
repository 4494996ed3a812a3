// The allocation journal: between two full state snapshots, each durable batch of allocations
// and releases is one appended JSON line, so that the cost of making an allocation durable does
// not grow with the number of allocations already made. Replaying a line sets or deletes ids,
// which is idempotent, so a journal replayed onto a snapshot that already holds it (a crash
// between writing a snapshot and emptying the journal) gives the same state.
import { formatIpv4 } from '../net/ipv4.js';
import type { Allocation } from './space.js';

export interface JournalEntry {
  /** id -> address (dotted quad) */
  readonly set: readonly (readonly [string, string])[];
  readonly del: readonly string[];
}

/** What changed from the persisted allocations to the current ones; undefined when nothing. */
export function diffAllocations(before: ReadonlyMap<string, number>, after: readonly Allocation[]): JournalEntry | undefined {
  const set: [string, string][] = [];
  const seen = new Set<string>();
  for (const a of after) {
    seen.add(a.id);
    if (before.get(a.id) !== a.address) set.push([a.id, formatIpv4(a.address)]);
  }
  const del = [...before.keys()].filter((id) => !seen.has(id));
  return set.length === 0 && del.length === 0 ? undefined : { set, del };
}

export function encodeJournalEntry(e: JournalEntry): string {
  return `${JSON.stringify({ set: e.set, del: e.del })}\n`;
}

export class JournalError extends Error {
  override name = 'JournalError';
}

/**
 * The entries of a journal of JSON lines (this one, and the CNI attachments' beside it), parsed.
 * A last line without its newline was being written when the process died; it was never
 * acknowledged, so it is dropped (`torn`). A line that is not JSON is a JournalError.
 */
export function readJournalLines(journal: string): { entries: unknown[]; torn: boolean } {
  const lines = journal.split('\n');
  const torn = (lines.pop() ?? '') !== '';
  const entries = lines.map((line, i) => {
    try {
      return JSON.parse(line) as unknown;
    } catch {
      throw new JournalError(`journal line ${i + 1} is not JSON`);
    }
  });
  return { entries, torn };
}

/**
 * Applies a journal to a parsed snapshot (the JSON value of state-format); a torn last line is
 * dropped, as readJournalLines says. Any other malformed line is a JournalError: the state is corrupt.
 */
export function applyJournal(snapshot: unknown, journal: string): { value: unknown; applied: number; torn: boolean } {
  const { entries, torn } = readJournalLines(journal);
  if (entries.length === 0) return { value: snapshot, applied: 0, torn };
  if (typeof snapshot !== 'object' || snapshot === null || !Array.isArray((snapshot as { allocations?: unknown }).allocations)) {
    throw new JournalError('journal without a snapshot holding allocations');
  }
  const allocations = new Map<string, unknown>();
  for (const a of (snapshot as { allocations: unknown[] }).allocations) {
    const id = (a as { id?: unknown }).id;
    if (typeof id !== 'string') throw new JournalError('snapshot allocation without an id');
    allocations.set(id, (a as { address?: unknown }).address);
  }
  entries.forEach((entry, i) => {
    const { set, del } = entry as { set?: unknown; del?: unknown };
    if (!Array.isArray(set) || !Array.isArray(del)) throw new JournalError(`journal line ${i + 1} is malformed`);
    for (const pair of set) {
      if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== 'string' || typeof pair[1] !== 'string') {
        throw new JournalError(`journal line ${i + 1} has a malformed allocation`);
      }
      allocations.set(pair[0], pair[1]);
    }
    for (const id of del) {
      if (typeof id !== 'string') throw new JournalError(`journal line ${i + 1} has a malformed release`);
      allocations.delete(id);
    }
  });
  // parseState checks the result as it checks any snapshot (two ids on one address, ...).
  const value = { ...(snapshot as object), allocations: [...allocations].map(([id, address]) => ({ id, address })) };
  return { value, applied: entries.length, torn };
}
