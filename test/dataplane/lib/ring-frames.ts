// Sequence-numbered frames of varying length for the FrameRing tests: byte pattern derived from
// the sequence number, so a frame delivered with the wrong bytes, length or place is detected.

/** Lengths from 4 bytes to the slot capacity, varied by a multiplicative hash of `seq`. */
export function testFrameLength(seq: number, capacity: number): number {
  return 4 + (Math.imul(seq, 0x9e3779b1) >>> 0) % (capacity - 3);
}

export function fillTestFrame(slot: Uint8Array, seq: number, length: number): void {
  new DataView(slot.buffer, slot.byteOffset, 4).setUint32(0, seq);
  for (let i = 4; i < length; i++) slot[i] = (seq * 31 + i) & 0xff;
}

/** The sequence number of a frame filled by fillTestFrame(), or undefined if any byte is wrong. */
export function checkTestFrame(frame: Uint8Array, capacity: number): number | undefined {
  if (frame.length < 4) return undefined;
  const seq = new DataView(frame.buffer, frame.byteOffset, 4).getUint32(0);
  if (frame.length !== testFrameLength(seq, capacity)) return undefined;
  for (let i = 4; i < frame.length; i++) if (frame[i] !== ((seq * 31 + i) & 0xff)) return undefined;
  return seq;
}
