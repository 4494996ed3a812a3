// Opening TAP devices on the real kernel (root), always inside a namespace of our own: where the
// device appears, with which flags, and what the errors say.
import t from 'tap';
import { LocalCluster } from '../../../src/cluster/cluster.js';
import { listNetns, sweep } from '../../../src/cluster/netns.js';
import { ip } from '../../../src/cluster/exec.js';
import {
  IFF_NO_PI,
  IFF_TAP,
  IFF_VNET_HDR,
  IFREQ_SIZE,
  TAP_OFFLOADS,
  TUN_F_CSUM,
  TUN_F_TSO4,
  TUN_F_TSO6,
  decodeIfreqName,
  encodeIfreq,
  openTapFd,
  openTunFd,
  validateTapName,
} from '../../../src/dataplane/tap/tun-ioctl.js';
import { closeFd, errnoName, SysError, EAGAIN } from '../../../src/dataplane/tap/libc.js';
import { withNetworkNamespace } from '../../../src/dataplane/tap/netns-enter.js';
import { TapDevice } from '../../../src/dataplane/tap/tap-device.js';

const PREFIX = 'wtt1';

t.before(async () => {
  await sweep(PREFIX);
});

t.test('struct ifreq: the name NUL-terminated at 0, the flags little-endian at 16, 40 bytes', async (t) => {
  const ifr = encodeIfreq('vethwe-tap', IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
  t.equal(ifr.length, IFREQ_SIZE);
  t.equal(ifr.subarray(0, 16).toString('latin1'), 'vethwe-tap\0\0\0\0\0\0');
  t.same([...ifr.subarray(16, 18)], [0x02, 0x50], 'IFF_TAP | IFF_NO_PI | IFF_VNET_HDR = 0x5002');
  t.ok(ifr.subarray(18).every((b) => b === 0));
  t.equal(decodeIfreqName(ifr), 'vethwe-tap');
  t.equal(decodeIfreqName(encodeIfreq('a23456789012345', 0)), 'a23456789012345', 'a 15-byte name keeps its terminator');
  t.equal(TAP_OFFLOADS, TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6);
  t.equal(TAP_OFFLOADS, 0x07);
});

t.test('device names the kernel would refuse are refused first', async (t) => {
  for (const bad of ['', 'a234567890123456', 'has space', 'a/b', 'a:b', 'tëst']) {
    t.throws(() => validateTapName(bad), { name: 'RangeError', message: /invalid TAP device name/ }, JSON.stringify(bad));
  }
  t.equal(validateTapName('tap%d'), 'tap%d');
  t.throws(() => openTapFd({ name: 'x', vnetHdr: false, offloads: true, nonBlocking: false }), { name: 'RangeError', message: /offloads need vnetHdr/ });
});

t.test('errno values get their usual names', async (t) => {
  t.equal(errnoName(EAGAIN), 'EAGAIN', 'not EWOULDBLOCK');
  t.equal(errnoName(2), 'ENOENT');
  t.equal(errnoName(77), 'EBADFD');
  t.equal(errnoName(99_999), 'errno 99999');
  const e = new SysError('cannot frob', 1);
  t.same([e.code, e.errno, e.message], ['EPERM', 1, 'cannot frob: EPERM (Operation not permitted)']);
});

t.test('a missing /dev/net/tun says what to check', async (t) => {
  t.throws(() => openTunFd(false, '/nonexistent/net/tun'), {
    name: 'SysError',
    code: 'ENOENT',
    message: 'cannot open /nonexistent/net/tun: ENOENT (No such file or directory; is the tun module loaded? try "modprobe tun"; in a container, is /dev/net/tun mounted?)',
  });
  t.ok(caught(() => openTunFd(false, '/nonexistent/net/tun')) instanceof SysError);
});

t.test('TAPs are created in the namespace asked for, with the flags asked for, and vanish on close', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1 });
  t.teardown(() => cluster.destroy());
  const node = cluster.node(1);

  const vnet = withNetworkNamespace(node.path, () => openTapFd({ name: 'wtt1-tap', vnetHdr: true, offloads: true, nonBlocking: true }));
  t.equal(vnet.name, 'wtt1-tap');
  const details = await node.iproute(['-d', 'link', 'show', 'wtt1-tap']);
  t.match(details, /tun type tap pi off vnet_hdr on persist off/);
  const hostLinks = await ip(null, ['-o', 'link', 'show']);
  t.notMatch(hostLinks, /wtt1-tap/, 'nothing in the host namespace');

  // A template: the kernel picks the number and says which.
  const plain = withNetworkNamespace(node.path, () => openTapFd({ name: 'wtt1-t%d', vnetHdr: false, offloads: false, nonBlocking: false }));
  t.equal(plain.name, 'wtt1-t0');
  t.match(await node.iproute(['-d', 'link', 'show', 'wtt1-t0']), /tun type tap pi off vnet_hdr off/);

  // The name is held: a second open of it fails with the kernel's reason and leaves no fd behind.
  const again = caught(() => withNetworkNamespace(node.path, () => openTapFd({ name: 'wtt1-tap', vnetHdr: true, offloads: true, nonBlocking: true })));
  t.match(again, { code: 'EBUSY', message: /^cannot create TAP device "wtt1-tap" \(TUNSETIFF\): EBUSY \(Device or resource busy; a device of that name exists/ });

  closeFd(vnet.fd);
  closeFd(plain.fd);
  t.equal(await node.link('wtt1-tap'), undefined, 'closing the fd deleted the device');
  t.equal(await node.link('wtt1-t0'), undefined);
});

t.test('TapDevice.open in a namespace; a refused open leaves nothing behind', async (t) => {
  const cluster = await LocalCluster.create({ prefix: PREFIX, nodes: 1 });
  t.teardown(() => cluster.destroy());
  const node = cluster.node(1);
  const tap = await TapDevice.open({ name: 'wtt1-dev', netns: node.path });
  t.teardown(() => tap.close());
  t.same([tap.name, tap.vnetHdr, tap.offloads, tap.headerLength], ['wtt1-dev', true, true, 10]);
  t.equal((await node.link('wtt1-dev'))?.kind, 'tun');
  await t.rejects(TapDevice.open({ name: 'wtt1-dev', netns: node.path }), { code: 'EBUSY' });
  await t.rejects(TapDevice.open({ name: 'wtt1-x', netns: '/run/netns/wtt1-nonexistent' }), { code: 'ENOENT' });
  await t.rejects(TapDevice.open({ name: 'wtt1-y', netns: node.path, vnetHdr: false, offloads: true }), /offloads need vnetHdr/);
  const plain = await TapDevice.open({ name: 'wtt1-plain', netns: node.path, vnetHdr: false });
  t.same([plain.vnetHdr, plain.offloads, plain.headerLength], [false, false, 0]);
  t.throws(() => plain.writeFrame(new Uint8Array(60), { flags: 1, gsoType: 0, hdrLen: 0, gsoSize: 0, csumStart: 0, csumOffset: 0 }), /no virtio_net_hdr/);
  await plain.close();
  await plain.close(); // idempotent
  t.same((await node.links()).map((l) => l.ifname).sort(), ['lo', 'wtt1-dev', 'wtt1-eth0'], 'only the open device is left');
});

t.test('nothing of ours is left', async (t) => {
  t.same((await listNetns()).filter((ns) => ns.startsWith(PREFIX)), []);
});

/** What `fn` throws (undefined if it returns). */
function caught(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}
