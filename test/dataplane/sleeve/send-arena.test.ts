// SendArena: the sends of one message never share memory; the next message reuses it; a message
// packed into the arena is byte for byte the one packed into new buffers.
import t from 'tap';
import { SendArena, MAX_UDP_PAYLOAD } from '../../../src/dataplane/sleeve/chunker.js';
import { OutboundLink } from '../../../src/dataplane/sleeve/outbound.js';
import { MessageKind, chunkStride } from '../../../src/dataplane/sleeve/header.js';
import { SequenceCounter } from '../../../src/dataplane/sleeve/sequence-counter.js';

t.test('regions of one message are disjoint; reset() starts over', async (t) => {
  const arena = new SendArena(1000);
  const a = arena.allocate(400);
  const b = arena.allocate(400);
  t.equal(a.buffer, b.buffer, 'one block');
  t.ok(a.byteOffset + a.length <= b.byteOffset, 'disjoint');
  const c = arena.allocate(400);
  t.not(c.buffer, a.buffer, 'past the end: new memory rather than an overlap');
  arena.reset();
  t.equal(arena.allocate(10).byteOffset, a.byteOffset, 'reused after reset');
});

t.test('a message packed into the arena equals the one packed into new buffers', async (t) => {
  const stride = chunkStride(1500);
  // Two links on two counters at the same number: identical messages.
  const one = new OutboundLink({ connectionUid: 9n, weDialled: true, stride, sequence: SequenceCounter.create() });
  const two = new OutboundLink({ connectionUid: 9n, weDialled: true, stride, sequence: SequenceCounter.create() });
  const arena = new SendArena();
  for (const size of [60, 62_000, 96 * 1024 - 100]) {
    const body = Buffer.alloc(size, size & 0xff);
    const fresh = one.pack({ kind: MessageKind.Frame, srcPeer: 1, dstPeer: 2, vnetHdr: true, body });
    arena.reset();
    const reused = two.pack({ kind: MessageKind.Frame, srcPeer: 1, dstPeer: 2, vnetHdr: true, body }, stride, arena.allocate);
    t.same(reused.map((b) => Buffer.from(b)), fresh.map((b) => Buffer.from(b)), `${size} bytes, ${fresh.length} send(s)`);
    t.ok(reused.every((b) => b.length <= MAX_UDP_PAYLOAD));
  }
});
