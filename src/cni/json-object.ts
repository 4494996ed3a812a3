// Reading untyped JSON (the network config and what the runtime puts in it) without `any`.

export type JsonObject = { readonly [key: string]: unknown };

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The value of `key` in `obj`, matching the key without regard to case when no exact match is
 * there, as Go's encoding/json does: the runtimeConfig Kubernetes runtimes send is marshalled from
 * Go structs without JSON tags, so its keys arrive capitalised ("HostPort", "Servers").
 */
export function caseless(obj: JsonObject, key: string): unknown {
  if (Object.hasOwn(obj, key)) return obj[key];
  const lower = key.toLowerCase();
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) return obj[k];
  return undefined;
}

/** A list of strings, or undefined when absent or null; throws `fail(reason)` for anything else. */
export function stringList(v: unknown, fail: (reason: string) => Error): string[] | undefined {
  if (v === undefined || v === null) return undefined;
  if (!Array.isArray(v) || !v.every((s) => typeof s === 'string')) throw fail(`want a list of strings, got ${JSON.stringify(v)}`);
  return v as string[];
}
