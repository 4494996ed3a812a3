// The CNI attachments as the daemon would load them from disk: its snapshot (`<db-prefix>cni.json`)
// with the journal beside it applied. Tests look at the disk through this, not at one file.
import { existsSync, readFileSync } from 'node:fs';
import { recordsFromFiles, type AttachmentRecord } from '../../src/api/cni-records.js';

export function recordsOnDisk(statePath: string): AttachmentRecord[] {
  const journal = `${statePath}.journal`;
  return recordsFromFiles(readFileSync(statePath, 'utf8'), existsSync(journal) ? readFileSync(journal, 'utf8') : '').records;
}
