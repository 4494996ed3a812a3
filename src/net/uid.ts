// 64-bit random identifiers (peer incarnations, connections). In memory they are bigints; on the
// wire 8 big-endian bytes, because protobufjs would round a 64-bit integer through a double.
import { randomBytes } from 'node:crypto';

export type Uid = bigint;

export function randomUid(): Uid {
  // Zero means "unset" on the wire, so it is never drawn.
  for (;;) {
    const uid = randomBytes(8).readBigUInt64BE();
    if (uid !== 0n) return uid;
  }
}

export function uidToBytes(uid: Uid): Uint8Array {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt.asUintN(64, uid));
  return b;
}

/** Decodes 8 bytes; anything else is a protocol error. */
export function uidFromBytes(bytes: Uint8Array | null | undefined): Uid {
  if (!bytes || bytes.length !== 8) {
    throw new RangeError(`invalid 64-bit id: want 8 bytes, got ${bytes ? bytes.length : 0}`);
  }
  return Buffer.from(bytes.buffer, bytes.byteOffset, 8).readBigUInt64BE();
}

/** Decimal text, as Weave prints UIDs in reports. */
export function formatUid(uid: Uid): string {
  return uid.toString(10);
}
