// WorkerSender on this thread (it runs in the TAP reader, but needs no Worker): a send that fails
// is counted and reported once per errno, and never throws; frames it does not take are left alone.
import t from 'tap';
import { LOCAL, REMOTE, frame, oneLinkSender } from './one-link-sender.js';

t.test('a failing sendto is counted, reported once per errno, and handled', async (t) => {
  // fd -1: every sendto fails with EBADF, as a socket closed under the reader would.
  const { sender, control, notes, sequence, publish } = oneLinkSender(t, -1, '127.0.0.1', 9);
  t.equal(sender.trySend(frame(REMOTE, LOCAL), 100), false, 'no snapshot yet: the main thread\'s');
  publish();
  for (let i = 0; i < 3; i++) t.equal(sender.trySend(frame(REMOTE, LOCAL), 100), true, `frame ${i} handled (dropped)`);
  t.equal(sender.trySend(frame('ff:ff:ff:ff:ff:ff', LOCAL), 100), false, 'broadcast: the main thread\'s');
  t.equal(sender.trySend(frame(REMOTE, LOCAL), 13), false, 'shorter than an Ethernet header: the main thread\'s');
  const { stats } = control.read();
  t.same(stats, { captured: 3, capturedBytes: 300, sent: 0, sentBytes: 0, sendErrors: 3 });
  t.same(notes.filter((n) => n.type === 'send-error'), [{ type: 'send-error', code: 'EBADF', link: '127.0.0.1:9' }], 'reported once');
  t.equal(sequence.next, 3, 'each frame took its number (the main thread never reuses them)');
});
