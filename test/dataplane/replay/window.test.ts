import t from 'tap';
import { equal } from 'node:assert/strict';
import fc from 'fast-check';
import { ReplayWindow } from '../../../src/dataplane/replay/window.js';

/** The specification: every number accepted, and how far back the window reaches. */
class Model {
  private readonly seen = new Set<number>();
  private highest = -1;
  constructor(private readonly size: number) {}

  check(n: number): boolean {
    if (!Number.isSafeInteger(n) || n < 0) return false;
    if (this.seen.has(n)) return false;
    return n > this.highest || this.highest - n < this.size;
  }

  accept(n: number): boolean {
    if (!this.check(n)) return false;
    this.seen.add(n);
    this.highest = Math.max(this.highest, n);
    return true;
  }
}

type Op = { accept: boolean; n: number };

/**
 * Numbers near the current highest (in and just out of the window, reordered, repeated), jumps
 * of about one window, echoes of earlier numbers one or two bitmap lengths on (they share a bit
 * of the ring with the earlier number: where a stale bit would hide), and the far end of the
 * range, so that every branch of the bitmap is exercised.
 */
const ops = (size: number): fc.Arbitrary<Op[]> =>
  fc
    .array(
      fc.record({
        accept: fc.boolean(),
        delta: fc.oneof(
          { weight: 6, arbitrary: fc.integer({ min: -size - 40, max: 40 }) },
          { weight: 2, arbitrary: fc.integer({ min: -size - 33, max: -size + 33 }) },
          { weight: 1, arbitrary: fc.integer({ min: size - 33, max: size + 66 }) },
          { weight: 1, arbitrary: fc.integer({ min: -4 * size, max: 4 * size }) },
        ),
        echo: fc.option(fc.record({ pick: fc.nat(), laps: fc.constantFrom(1, 2), off: fc.integer({ min: -1, max: 1 }) }), { freq: 3 }),
        lap: fc.option(fc.integer({ min: 0, max: size + 32 }), { freq: 8 }),
        far: fc.boolean(),
      }),
      { maxLength: 400, size: 'max' },
    )
    .map((raw) => {
      let base = 0;
      const earlier: number[] = [];
      return raw.flatMap(({ accept, delta, echo, lap, far }): Op[] => {
        if (lap !== null && earlier.length > 0) {
          // Move the window on by one to two lengths, then ask about the number that shares a
          // bit with the lowest number accepted lately.
          const top = base + size + 32 + lap;
          const low = Math.min(...earlier.slice(-8));
          earlier.push(top);
          base = top;
          return [{ accept: true, n: top }, { accept, n: low + size + 32 }];
        }
        let n = Math.max(0, base + delta);
        if (echo && earlier.length > 0) n = earlier[echo.pick % earlier.length]! + echo.laps * (size + 32) + echo.off;
        if (far && delta === 40) n = Number.MAX_SAFE_INTEGER - (n % 100);
        if (accept) {
          earlier.push(n);
          base = Math.max(base, n);
        }
        return [{ accept, n }];
      });
    });

for (const bits of [64, 256, 2048]) {
  t.test(`agrees with a Set-based model on every check and accept (${bits} bits)`, async () => {
    fc.assert(
      fc.property(ops(bits - 32), (sequence) => {
        const w = new ReplayWindow(bits);
        const m = new Model(w.size);
        for (const { accept, n } of sequence) {
          equal(w.check(n), m.check(n), `check ${n}`);
          if (accept) equal(w.accept(n), m.accept(n), `accept ${n}`);
        }
      }),
      { numRuns: bits === 2048 ? 200 : 1000 },
    );
  });
}

t.test('check changes nothing: a number only checked is still fresh later', async () => {
  const w = new ReplayWindow(64);
  for (let n = 0; n < 1000; n++) equal(w.check(n * 7), true);
  equal(w.highest, -1);
  equal(w.accept(5), true);
  equal(w.check(5), false);
  equal(w.check(6000), true);
  equal(w.check(4), true); // never accepted: a forged 6000 that was only checked moved nothing
});

t.test('replays are refused; reordering within the window is not', async () => {
  const w = new ReplayWindow(2048);
  equal(w.size, 2016);
  for (const n of [0, 2, 1, 10, 5, 3]) equal(w.accept(n), true, `first ${n}`);
  for (const n of [0, 2, 1, 10, 5, 3]) equal(w.accept(n), false, `again ${n}`);
  equal(w.accept(4), true);
  equal(w.highest, 10);
});

t.test('the edge of the window: size − 1 below the highest is tracked, size below is too old', async () => {
  const w = new ReplayWindow(256);
  const size = w.size;
  equal(w.accept(10_000), true);
  equal(w.check(10_000 - size + 1), true);
  equal(w.check(10_000 - size), false);
  equal(w.accept(10_000 - size + 1), true);
  equal(w.accept(10_000 - size + 1), false);
  // A jump further than the whole bitmap forgets everything below it.
  equal(w.accept(10_000 + 10 * 256), true);
  equal(w.check(10_000), false);
  equal(w.check(10_000 + 10 * 256 - 1), true);
});

t.test('numbers up to 2^53 − 1 work; anything that is not one is refused', async () => {
  const w = new ReplayWindow();
  const top = Number.MAX_SAFE_INTEGER;
  equal(w.accept(top - 1), true);
  equal(w.accept(top), true);
  equal(w.accept(top - 1), false);
  equal(w.check(top - 2), true);
  for (const bad of [-1, 1.5, Number.NaN, Infinity, 2 ** 53, 2 ** 60]) {
    equal(w.check(bad), false, String(bad));
    equal(w.accept(bad), false, String(bad));
  }
});

t.test('only power-of-two sizes of at least 64 bits', async (t) => {
  for (const bits of [0, 32, 100, 1000, 2 ** 25]) t.throws(() => new ReplayWindow(bits), RangeError, String(bits));
  equal(new ReplayWindow(8192).size, 8160);
});
