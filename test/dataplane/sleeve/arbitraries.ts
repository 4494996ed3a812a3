// Random sleeve headers for the property tests of this folder.
import fc from 'fast-check';
import { MAX_CHUNKS, MAX_SEQUENCE, MessageKind, type MessageHeader } from '../../../src/dataplane/sleeve/header.js';

export const kinds = Object.values(MessageKind);

export const messageHeader = (chunkCount?: fc.Arbitrary<number>): fc.Arbitrary<MessageHeader> =>
  fc.record({
    kind: fc.constantFrom(...kinds),
    vnetHdr: fc.boolean(),
    sealed: fc.boolean(),
    fromDialler: fc.boolean(),
    srcPeer: fc.oneof(fc.constantFrom(0, 2 ** 48 - 1), fc.integer({ min: 0, max: 2 ** 48 - 1 })),
    dstPeer: fc.oneof(fc.constantFrom(0, 2 ** 48 - 1), fc.integer({ min: 0, max: 2 ** 48 - 1 })),
    connectionUid: fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }),
    sequence: fc.oneof(fc.constantFrom(0, 2 ** 32 - 1, 2 ** 32, MAX_SEQUENCE), fc.integer({ min: 0, max: MAX_SEQUENCE })),
    chunkCount: chunkCount ?? fc.integer({ min: 1, max: MAX_CHUNKS }),
    phase: fc.constantFrom(0, 1),
  }).map(({ phase, ...h }) => ({ ...h, keyPhase: h.sealed ? phase : 0 }));

/** Deterministic pseudo-random bytes (tests must not depend on Math.random). */
export function bytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}
