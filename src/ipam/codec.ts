// The IPAM channel's messages in their protobuf form (IpamMessage in proto/weft.proto). Decoding
// checks every field and yields the typed values of messages.ts, so the pure core never sees a
// malformed ring or claim. Unlike the wire layer's codecs, a refused IPAM message is a result,
// not a ProtocolError: the shell logs it and drops the message, and the connection stays up
// (Weave tore connections down over IPAM disagreements and isolated nodes, pain #5).
import { weft } from '../proto.js';
import { type PeerName, peerNameFromNumber, peerNameToNumber } from '../net/peer-name.js';
import { type Ballot, type Claim } from './consensus.js';
import { type IpamMessage } from './messages.js';
import { type Ring, checkRing } from './ring.js';

export type DecodeResult = { readonly ok: true; readonly message: IpamMessage } | { readonly ok: false; readonly error: string };

const MAX_REASON = 500;

function wireBallot(b: Ballot | null): weft.IpamBallot.$Properties | null {
  return b ? { round: b.round, proposer: peerNameToNumber(b.proposer) } : null;
}

function wireRing(r: Ring): weft.IpamRing.$Properties {
  return {
    rangeStart: r.range.start,
    prefixLength: r.range.prefixLength,
    members: r.members.map(peerNameToNumber),
    tokens: r.tokens.map((t) => ({ start: t.start, owner: peerNameToNumber(t.owner), version: t.version, free: t.free })),
  };
}

function wireMessage(m: IpamMessage): weft.IpamMessage.$Properties {
  switch (m.kind) {
    case 'gossip':
      return {
        gossip: {
          ring: m.ring ? wireRing(m.ring) : null,
          hasConsensus: m.consensus !== undefined,
          claims: [...(m.consensus ?? [])].map(([voter, c]) => ({
            voter: peerNameToNumber(voter),
            promise: wireBallot(c.promise),
            acceptedBallot: wireBallot(c.accepted?.ballot ?? null),
            acceptedValue: (c.accepted?.value ?? []).map(peerNameToNumber),
          })),
        },
      };
    case 'space-request':
      return { spaceRequest: {} };
    case 'space-denied':
      return { spaceDenied: {} };
    case 'address-request':
      return { addressRequest: { address: m.address } };
    case 'address-denied':
      return { addressDenied: { address: m.address, reason: m.reason.slice(0, MAX_REASON) } };
  }
}

export function encodeIpamMessage(m: IpamMessage): Uint8Array {
  return weft.IpamMessage.encode(wireMessage(m)).finish();
}

/** Thrown inside the decoder only; decodeIpamMessage turns it into a result. */
class Refused extends Error {}

function refuse(what: string): never {
  throw new Refused(what);
}

function name(n: number | null | undefined, what: string): PeerName {
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 2 ** 48 - 1) refuse(`${what} is not a peer name`);
  return peerNameFromNumber(n);
}

function whole(n: number | null | undefined, what: string): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) refuse(`${what} is not a whole number`);
  return n;
}

function ballot(b: weft.IpamBallot.$Properties | null | undefined, what: string): Ballot | null {
  if (!b) return null;
  const round = whole(b.round, `${what} round`);
  if (round < 1) refuse(`${what} round is 0`);
  return { round, proposer: name(b.proposer, `${what} proposer`) };
}

function sortedNames(list: readonly number[] | null | undefined, what: string): PeerName[] {
  const names = (list ?? []).map((n, i) => name(n, `${what} ${i}`));
  if (names.some((n, i) => i > 0 && (names[i - 1] as PeerName) >= n)) refuse(`${what} are not sorted and unique`);
  return names;
}

function ring(r: weft.IpamRing.$Properties): Ring {
  const prefixLength = whole(r.prefixLength, 'ring prefix length');
  const value: Ring = {
    range: { start: whole(r.rangeStart, 'ring range start'), prefixLength },
    members: sortedNames(r.members, 'ring members'),
    tokens: (r.tokens ?? []).map((t, i) => ({
      start: whole(t.start, `token ${i} start`),
      owner: name(t.owner, `token ${i} owner`),
      version: whole(t.version, `token ${i} version`),
      free: whole(t.free, `token ${i} free`),
    })),
  };
  const problem = checkRing(value);
  if (problem !== undefined) refuse(`invalid ring: ${problem}`);
  return value;
}

function claims(list: readonly weft.IpamClaim.$Properties[]): Map<PeerName, Claim> {
  const out = new Map<PeerName, Claim>();
  list.forEach((c, i) => {
    const voter = name(c.voter, `claim ${i} voter`);
    if (out.has(voter)) refuse(`two claims of ${voter}`);
    const acceptedBallot = ballot(c.acceptedBallot, `claim ${i} accepted ballot`);
    const value = sortedNames(c.acceptedValue, `claim ${i} accepted members`);
    if (acceptedBallot && value.length === 0) refuse(`claim ${i} accepted no members`);
    if (!acceptedBallot && value.length > 0) refuse(`claim ${i} has members without a ballot`);
    out.set(voter, {
      promise: ballot(c.promise, `claim ${i} promise`),
      accepted: acceptedBallot ? { ballot: acceptedBallot, value } : null,
    });
  });
  return out;
}

/** Decodes and checks an IPAM message; never throws. */
export function decodeIpamMessage(bytes: Uint8Array): DecodeResult {
  let wire: weft.IpamMessage;
  try {
    wire = weft.IpamMessage.decode(bytes);
  } catch (err) {
    return { ok: false, error: `undecodable IPAM message: ${(err as Error).message}` };
  }
  try {
    switch (wire.body) {
      case 'gossip': {
        const g = wire.gossip ?? refuse('empty gossip');
        const message: IpamMessage = {
          kind: 'gossip',
          ...(g.ring ? { ring: ring(g.ring) } : {}),
          ...(g.hasConsensus ? { consensus: claims(g.claims ?? []) } : {}),
        };
        return { ok: true, message };
      }
      case 'spaceRequest':
        return { ok: true, message: { kind: 'space-request' } };
      case 'spaceDenied':
        return { ok: true, message: { kind: 'space-denied' } };
      case 'addressRequest':
        return { ok: true, message: { kind: 'address-request', address: whole(wire.addressRequest?.address, 'address') } };
      case 'addressDenied': {
        const d = wire.addressDenied ?? refuse('empty address denial');
        // The reason ends up in an HTTP answer and a log line: one printable line, bounded.
        const reason = (d.reason ?? '').replace(/[\u0000-\u001f\u007f-\u009f]+/g, ' ').slice(0, MAX_REASON);
        return { ok: true, message: { kind: 'address-denied', address: whole(d.address, 'address'), reason } };
      }
      default:
        return { ok: false, error: 'IPAM message with no body' };
    }
  } catch (err) {
    if (err instanceof Refused) return { ok: false, error: `invalid IPAM message: ${err.message}` };
    throw err;
  }
}
