// Reads the UDP payloads out of a classic pcap file (what `tcpdump -w` writes), for tests that
// replay captured datagrams.

export interface CapturedUdp {
  readonly src: string;
  readonly dst: string;
  readonly dstPort: number;
  readonly payload: Buffer;
}

export function udpPayloads(file: Buffer): CapturedUdp[] {
  const magic = file.readUInt32LE(0);
  const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
  if (!le && file.readUInt32BE(0) !== 0xa1b2c3d4 && file.readUInt32BE(0) !== 0xa1b23c4d) throw new Error('not a pcap file');
  const u32 = (o: number): number => (le ? file.readUInt32LE(o) : file.readUInt32BE(o));
  const linkType = u32(20);
  if (linkType !== 1) throw new Error(`link type ${linkType}: only Ethernet captures are read`);
  const out: CapturedUdp[] = [];
  for (let off = 24; off + 16 <= file.length;) {
    const caplen = u32(off + 8);
    const pkt = file.subarray(off + 16, off + 16 + caplen);
    off += 16 + caplen;
    if (pkt.length < 14 + 20 + 8 || pkt.readUInt16BE(12) !== 0x0800) continue;
    const ip = pkt.subarray(14);
    const ihl = (ip[0]! & 0x0f) * 4;
    if (ip[9] !== 17) continue;
    const udp = ip.subarray(ihl);
    const ipText = (o: number): string => [...ip.subarray(o, o + 4)].join('.');
    out.push({ src: ipText(12), dst: ipText(16), dstPort: udp.readUInt16BE(2), payload: Buffer.from(udp.subarray(8, udp.readUInt16BE(4))) });
  }
  return out;
}
