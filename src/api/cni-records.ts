// The pods this node attached through the CNI plugin, as kept on disk beside the IPAM state
// (`<db-prefix>cni.json`, a snapshot, and `cni.json.journal`, one line per change since it):
// what `weave ps` lists, what GC and the reconcile loop compare with the runtime and the host.
// Pure: the record format, and the decisions of GC and reconcile.
import type { Attachment, CniAttachmentKey } from './cni-protocol.js';
import { readJournalLines } from '../ipam/journal.js';

export interface AttachmentRecord {
  readonly containerId: string;
  readonly ifName: string;
  readonly netns: string;
  /** Host end of the pair (`vethwepl<id>`). */
  readonly hostIf: string;
  /** The pod end's MAC; empty while the ADD that made the record is under way. */
  readonly mac: string;
  /** The pod's address with the range's prefix; empty until IPAM gave it (on disk, maybe until the ADD ends). */
  readonly cidr: string;
}

const FORMAT_VERSION = 1;

export function attachmentKey(k: CniAttachmentKey): string {
  return `${k.containerId}\0${k.ifName}`;
}

export function recordsToText(records: Iterable<AttachmentRecord>): string {
  const list = [...records].sort((a, b) => attachmentKey(a).localeCompare(attachmentKey(b)));
  return `${JSON.stringify({ version: FORMAT_VERSION, attachments: list }, null, 1)}\n`;
}

function isRecord(v: unknown): v is AttachmentRecord {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return ['containerId', 'ifName', 'netns', 'hostIf', 'mac', 'cidr'].every((k) => typeof o[k] === 'string');
}

/** Parses the file; throws a one-line error for a file that is not ours or is damaged. */
export function parseRecords(text: string): AttachmentRecord[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`not JSON: ${(err as Error).message}`);
  }
  const o = parsed as { version?: unknown; attachments?: unknown };
  if (typeof o !== 'object' || o === null || o.version !== FORMAT_VERSION || !Array.isArray(o.attachments)) {
    throw new Error(`not a version ${FORMAT_VERSION} attachments file`);
  }
  const bad = o.attachments.findIndex((a) => !isRecord(a));
  if (bad >= 0) throw new Error(`attachment ${bad} is malformed`);
  return (o.attachments as AttachmentRecord[]).map((a) => ({
    containerId: a.containerId, ifName: a.ifName, netns: a.netns, hostIf: a.hostIf, mac: a.mac, cidr: a.cidr,
  }));
}

/**
 * One change of the records, a line of the journal: an ADD's record made durable costs one
 * appended line and one fdatasync, where a snapshot costs three fsyncs and a rename.
 */
export type RecordChange = { readonly put: AttachmentRecord } | { readonly del: CniAttachmentKey };

export function encodeRecordChange(change: RecordChange): string {
  if ('put' in change) {
    const r = change.put;
    return `${JSON.stringify({ put: { containerId: r.containerId, ifName: r.ifName, netns: r.netns, hostIf: r.hostIf, mac: r.mac, cidr: r.cidr } })}\n`;
  }
  return `${JSON.stringify({ del: { containerId: change.del.containerId, ifName: change.del.ifName } })}\n`;
}

/**
 * Applies the journal's changes, in order, to the snapshot's records (a torn last line dropped,
 * as readJournalLines says). Any other bad line throws (the file is damaged; the caller sets it aside).
 */
export function applyRecordJournal(records: readonly AttachmentRecord[], journal: string): { records: AttachmentRecord[]; applied: number; torn: boolean } {
  const byKey = new Map(records.map((r) => [attachmentKey(r), r]));
  const { entries, torn } = readJournalLines(journal);
  entries.forEach((change, i) => {
    const { put, del } = (typeof change === 'object' && change !== null ? change : {}) as { put?: unknown; del?: unknown };
    if (isRecord(put)) {
      byKey.set(attachmentKey(put), { containerId: put.containerId, ifName: put.ifName, netns: put.netns, hostIf: put.hostIf, mac: put.mac, cidr: put.cidr });
    } else if (typeof del === 'object' && del !== null && typeof (del as CniAttachmentKey).containerId === 'string' && typeof (del as CniAttachmentKey).ifName === 'string') {
      byKey.delete(attachmentKey(del as CniAttachmentKey));
    } else {
      throw new Error(`journal line ${i + 1} is malformed`);
    }
  });
  return { records: [...byKey.values()], applied: entries.length, torn };
}

/** What the snapshot and its journal hold together (the daemon's load, and tests looking at the disk). */
export function recordsFromFiles(snapshot: string, journal: string): { records: AttachmentRecord[]; torn: boolean } {
  const { records, torn } = applyRecordJournal(parseRecords(snapshot), journal);
  return { records, torn };
}

/** `weave ps`: the completed attachments. */
export function toAttachments(records: Iterable<AttachmentRecord>): Attachment[] {
  return [...records].filter((r) => r.mac !== '').map((r) => ({ containerId: r.containerId, ifName: r.ifName, mac: r.mac, cidr: r.cidr }));
}

/** GC: the records the runtime no longer has. */
export function gcVictims(records: Iterable<AttachmentRecord>, valid: readonly CniAttachmentKey[]): AttachmentRecord[] {
  const keep = new Set(valid.map(attachmentKey));
  return [...records].filter((r) => !keep.has(attachmentKey(r)));
}

/**
 * Reconcile: the records whose host end is gone (the pod's namespace went away, someone deleted
 * the link, or the daemon died in the middle of an ADD): their addresses are leaked otherwise.
 * `busy` are the containers with an operation under way, whose links may not exist yet.
 */
export function orphans(records: Iterable<AttachmentRecord>, hostVeths: ReadonlySet<string>, busy: ReadonlySet<string>): AttachmentRecord[] {
  return [...records].filter((r) => !hostVeths.has(r.hostIf) && !busy.has(r.containerId));
}
