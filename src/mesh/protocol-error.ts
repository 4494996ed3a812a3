// The one error type for "a peer sent something we refuse". The connection shell catches it,
// logs the message once and closes that connection; anything else that escapes the wire layer is
// a bug of ours. Because the message goes straight into the log, it is kept to one line, and
// whatever a peer controls is shown through the helpers below, never raw.

export class ProtocolError extends Error {
  constructor(message: string) {
    // A peer's bytes must never be able to forge extra log lines.
    super(message.replace(/[\r\n]+/g, ' '));
    this.name = 'ProtocolError';
  }
}

const PRINTABLE_ASCII = /^[\x20-\x7e]$/;

/**
 * Shows bytes a peer sent, for a log line: the printable ASCII rendering (others as '.') and the
 * hex, e.g. `"GET / HT" (47 45 54 20 2f 20 48 54)`. At most `max` bytes, then an ellipsis.
 */
export function describeBytes(bytes: Uint8Array, max = 16): string {
  const shown = bytes.subarray(0, max);
  const text = Array.from(shown, (b) => {
    const c = String.fromCharCode(b);
    return PRINTABLE_ASCII.test(c) ? c : '.';
  }).join('');
  const hex = Array.from(shown, (b) => b.toString(16).padStart(2, '0')).join(' ');
  const more = bytes.length > max ? ' …' : '';
  return `${JSON.stringify(text)} (${hex}${more})`;
}

/** Quotes a string a peer sent, escaping control characters and cutting it to `max` characters. */
export function quoteForLog(text: string, max = 64): string {
  return text.length > max ? `${JSON.stringify(text.slice(0, max))}…` : JSON.stringify(text);
}
