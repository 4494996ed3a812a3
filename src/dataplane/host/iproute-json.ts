// Reading iproute2's JSON output (`ip -j`, `bridge -j`) without trusting its shape: every planner
// that probes the kernel gets plain records back, or one error line naming what could not be read.

/** `v` as a JSON object, or undefined when it is anything else. */
export function jsonRecord(v: unknown): Record<string, unknown> | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
}

/**
 * The objects of an iproute2 JSON array ('' is none: the device or table does not exist);
 * elements that are not objects are skipped. Throws "cannot parse <what>: ..." otherwise.
 */
export function jsonObjects(text: string, what: string): Record<string, unknown>[] {
  const trimmed = text.trim();
  if (trimmed === '') return [];
  let parsed: unknown;
  try {
    parsed = JSON.parse(trimmed);
  } catch {
    throw new Error(`cannot parse ${what}: ${trimmed.slice(0, 200)}`);
  }
  if (!Array.isArray(parsed)) throw new Error(`cannot parse ${what}: not a JSON array`);
  return parsed.flatMap((x: unknown) => {
    const r = jsonRecord(x);
    return r === undefined ? [] : [r];
  });
}

export const asBool = (v: unknown): boolean | undefined => (typeof v === 'boolean' ? v : undefined);
export const asNumber = (v: unknown): number | undefined => (typeof v === 'number' ? v : undefined);
export const asString = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
