import { ProtocolError } from '../../src/mesh/protocol-error.js';

/** The message of the ProtocolError `fn` throws; '(accepted)' if it throws nothing; any other error fails the test. */
export function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof ProtocolError) return err.message;
    throw err;
  }
  return '(accepted)';
}
