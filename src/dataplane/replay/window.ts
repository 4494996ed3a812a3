// A sliding replay window over message sequence numbers (one per direction of a connection).
//
// Datagrams may arrive out of order, so the receiver cannot insist on "the next number". It
// remembers the highest number accepted and, in a bitmap, which of the `size` numbers below it
// were accepted; a number seen before, or too old for the bitmap to say, is refused.
//
// Two steps, so that a forged datagram cannot move the window: `check` before the (costly)
// decryption says whether the number could be fresh and changes nothing; `accept` after the
// message authenticated records it (and re-checks, so that of two copies racing through
// decryption only one is delivered).
//
// The bitmap is a ring of 32-bit blocks (the scheme of RFC 6479 and wireguard-go's replay
// package): advancing the window clears whole blocks instead of shifting bits. With B blocks the
// window tracks size = (B − 1) × 32 numbers below the highest; the spare block is the one being
// recycled.
//
// Numbers are integers in 0..2^53 − 1 (see MAX_SEQUENCE in the sleeve header).

const BLOCK_BITS = 32;

export class ReplayWindow {
  /** How far below the highest accepted number a number is still tracked. */
  readonly size: number;
  private readonly blocks: Uint32Array;
  private readonly blockCount: number;
  /** Highest accepted number; -1 before the first. */
  private last = -1;

  /** `bits`: the bitmap's size, a power of two, at least 64 (default 8192: 1 KiB per window). */
  constructor(bits = 8192) {
    if (!Number.isInteger(bits) || bits < 64 || (bits & (bits - 1)) !== 0 || bits > 2 ** 24) {
      throw new RangeError(`replay window of ${bits} bits: want a power of two in 64..2^24`);
    }
    this.blockCount = bits / BLOCK_BITS;
    this.blocks = new Uint32Array(this.blockCount);
    this.size = bits - BLOCK_BITS;
  }

  /** The highest number accepted so far (-1 if none). */
  get highest(): number {
    return this.last;
  }

  /** True when `n` has not been accepted and is recent enough to tell. Changes nothing. */
  check(n: number): boolean {
    if (!Number.isInteger(n) || n < 0 || n > Number.MAX_SAFE_INTEGER) return false;
    if (n > this.last) return true;
    if (this.last - n >= this.size) return false;
    const block = Math.floor(n / BLOCK_BITS) % this.blockCount;
    return (this.blocks[block]! & (1 << n % BLOCK_BITS)) === 0;
  }

  /**
   * Records `n` as seen. Call only after the message carrying it authenticated. False (and
   * nothing recorded) when `n` would not pass `check`.
   */
  accept(n: number): boolean {
    if (!this.check(n)) return false;
    if (n > this.last) {
      const current = this.last < 0 ? -1 : Math.floor(this.last / BLOCK_BITS);
      const target = Math.floor(n / BLOCK_BITS);
      // Clear the blocks the window moves into: they hold numbers now too old to matter.
      const steps = Math.min(target - current, this.blockCount);
      for (let i = 1; i <= steps; i++) this.blocks[(target - steps + i) % this.blockCount] = 0;
      this.last = n;
    }
    const block = Math.floor(n / BLOCK_BITS) % this.blockCount;
    this.blocks[block] = this.blocks[block]! | (1 << n % BLOCK_BITS);
    return true;
  }
}
