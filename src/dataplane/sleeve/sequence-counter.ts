// The sequence numbers of one direction of a sleeve connection, shareable between threads.
//
// The main thread and the TAP reader Worker both send on the same links (the Worker the common
// unicast frames, the main thread heartbeats, relays and floods), so both must number from one
// counter: with a password the number is the AEAD nonce, and two messages sealed under one key
// with one number would break the cipher. The counter is one 64-bit word in a SharedArrayBuffer,
// taken with Atomics.add: each number goes to exactly one caller whatever the threads do, with no
// lock (a lock held by a thread that was descheduled or terminated would stall the other).
//
// Everything else a sender needs follows from the number alone (the key epoch: see
// frame-crypto.ts), so no other state has to be shared.
import { MAX_SEQUENCE } from './header.js';

export class SequenceCounter {
  private readonly word: BigInt64Array;

  private constructor(readonly buffer: SharedArrayBuffer) {
    if (buffer.byteLength < 8) throw new RangeError('a sequence counter needs 8 bytes of shared memory');
    this.word = new BigInt64Array(buffer, 0, 1);
  }

  /** A new counter at 0, in its own shared memory; hand `buffer` to another thread to attach(). */
  static create(): SequenceCounter {
    return new SequenceCounter(new SharedArrayBuffer(8));
  }

  /** The same counter as the one whose `buffer` this is (in another thread, say). */
  static attach(buffer: SharedArrayBuffer): SequenceCounter {
    return new SequenceCounter(buffer);
  }

  /** The number the next take() returns (a snapshot: another thread may take it first). */
  get next(): number {
    return Number(Atomics.load(this.word, 0));
  }

  /**
   * The next number, now ours alone. Throws a RangeError past MAX_SEQUENCE (the connection must
   * be remade); the counter then stays exhausted, so no number is ever handed out twice.
   */
  take(): number {
    const n = Number(Atomics.add(this.word, 0, 1n));
    if (n > MAX_SEQUENCE) throw new RangeError('sequence numbers exhausted: remake the connection');
    return n;
  }

  /**
   * Takes `sequence` if it is the next number (atomically: compare and swap); false, taking
   * nothing, if it is not (already taken, or ahead of the counter).
   */
  takeExactly(sequence: number): boolean {
    if (!Number.isSafeInteger(sequence) || sequence < 0 || sequence > MAX_SEQUENCE) return false;
    const want = BigInt(sequence);
    return Atomics.compareExchange(this.word, 0, want, want + 1n) === want;
  }

  /** Test hook: continue as if `n` numbers had been taken. */
  skipTo(n: number): void {
    Atomics.store(this.word, 0, BigInt(n));
  }
}
