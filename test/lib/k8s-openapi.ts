// A strict validator of Kubernetes objects against the real Kubernetes OpenAPI v2 document
// (../shared/k8s-openapi/swagger-1.36.json, read at run time, never copied into the project).
//
// Strict means what a real API server with field validation "Strict" rejects and a little more:
// unknown fields, wrong types, missing required fields, malformed Quantity / int-or-string / time
// values, and duplicate keys in lists the schema declares as maps or sets. Nulls are accepted where
// a field is optional, because the API server decodes `field: null` as "unset" (kubectl itself
// prints `creationTimestamp: null`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import formatsModule from 'ajv-formats';
import { repoRoot } from './repo-root.js';

// ajv-formats is CommonJS with `exports.default`; under NodeNext the default import is the module object.
const addFormats = formatsModule.default;

/** Where the OpenAPI document lives: beside the repository, shared by every worktree. */
export const swaggerPath = join(repoRoot(), '..', 'shared', 'k8s-openapi', 'swagger-1.36.json');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type SwaggerSchema = { [key: string]: Json };

interface GroupVersionKind {
  group: string;
  version: string;
  kind: string;
}

const INT_OR_STRING = 'io.k8s.apimachinery.pkg.util.intstr.IntOrString';
const QUANTITY = 'io.k8s.apimachinery.pkg.api.resource.Quantity';

// <signedNumber><suffix> from the Quantity description: binary SI, decimal SI or a decimal exponent.
const QUANTITY_PATTERN = '^[+-]?([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(([KMGTPE]i)|[numkMGTPE]|[eE][+-]?[0-9]+)?$';

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * One swagger 2.0 schema as JSON Schema draft-07: objects with properties get
 * additionalProperties:false; int-or-string becomes integer|string; the x-kubernetes-* list
 * semantics become the custom keyword `k8sList`; other extensions and descriptions are dropped.
 */
function convert(schema: SwaggerSchema): SwaggerSchema {
  const out: SwaggerSchema = {};
  for (const [key, value] of Object.entries(schema)) {
    if (key === 'description' || key.startsWith('x-')) continue;
    if (key === 'properties' && isObject(value)) {
      const props: SwaggerSchema = {};
      for (const [name, sub] of Object.entries(value)) props[name] = convert(sub as SwaggerSchema);
      out.properties = props;
    } else if ((key === 'items' || key === 'additionalProperties') && isObject(value)) {
      out[key] = convert(value as SwaggerSchema);
    } else {
      out[key] = value;
    }
  }
  if (schema.format === 'int-or-string') {
    delete out.type;
    delete out.format;
    out.anyOf = [{ type: 'integer', format: 'int32' }, { type: 'string' }];
  }
  if (out.type === 'object' && isObject(out.properties) && out.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  const listType = schema['x-kubernetes-list-type'];
  if (listType === 'map' || listType === 'set') {
    const keys = schema['x-kubernetes-list-map-keys'];
    out.k8sList = listType === 'map' && Array.isArray(keys) ? { map: keys as Json[] } : { set: true };
  }
  return out;
}

/** All definitions converted, plus the lookup from group/version/kind to definition name. */
function loadDefinitions(path: string): { definitions: SwaggerSchema; byGvk: Map<string, string> } {
  const doc = JSON.parse(readFileSync(path, 'utf8')) as { definitions: Record<string, SwaggerSchema> };
  const definitions: SwaggerSchema = {};
  const byGvk = new Map<string, string>();
  for (const [name, def] of Object.entries(doc.definitions)) {
    definitions[name] = convert(def);
    for (const gvk of (def['x-kubernetes-group-version-kind'] ?? []) as unknown as GroupVersionKind[]) {
      byGvk.set(gvkKey(gvk.group, gvk.version, gvk.kind), name);
    }
  }
  // A Quantity is a string in the document, but the API server also accepts a JSON number (`cpu: 1`).
  definitions[QUANTITY] = { anyOf: [{ type: 'string', pattern: QUANTITY_PATTERN }, { type: 'number' }] };
  definitions[INT_OR_STRING] = { anyOf: [{ type: 'integer', format: 'int32' }, { type: 'string' }] };
  return { definitions, byGvk };
}

function gvkKey(group: string, version: string, kind: string): string {
  return `${group}/${version}/${kind}`;
}

/** 'apps/v1' → group apps, version v1; 'v1' → the core group ''. */
function splitApiVersion(apiVersion: string): { group: string; version: string } {
  const slash = apiVersion.indexOf('/');
  return slash < 0 ? { group: '', version: apiVersion } : { group: apiVersion.slice(0, slash), version: apiVersion.slice(slash + 1) };
}

/** The JSON pointer of an ajv error as Kubernetes writes field paths: spec.containers[0].name. */
function fieldPath(pointer: string): string {
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const part = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    path += /^\d+$/.test(part) ? `[${part}]` : path === '' ? part : `.${part}`;
  }
  return path === '' ? '(root)' : path;
}

function describe(error: ErrorObject): string {
  const at = fieldPath(error.instancePath);
  const params = error.params as Record<string, unknown>;
  switch (error.keyword) {
    case 'additionalProperties':
      return `${at === '(root)' ? '' : `${at}.`}${String(params.additionalProperty)}: unknown field`;
    case 'required':
      return `${at === '(root)' ? '' : `${at}.`}${String(params.missingProperty)}: required field missing`;
    default:
      return `${at}: ${error.message ?? error.keyword}`;
  }
}

/** The API server treats an explicit null as an absent field; drop null-valued keys (not array items). */
function withoutNulls(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(withoutNulls);
  if (!isObject(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) if (v !== null) out[k] = withoutNulls(v);
  return out;
}

/** A message of a nested value re-rooted under `prefix` (e.g. items[2] or object). */
function under(prefix: string, message: string): string {
  if (message.startsWith('(root)')) return prefix + message.slice('(root)'.length);
  return message.startsWith('[') ? prefix + message : `${prefix}.${message}`;
}

const INT32 = { min: -(2 ** 31), max: 2 ** 31 - 1 };

class OpenApiValidator {
  private readonly ajv: Ajv;
  private readonly byGvk: Map<string, string>;
  private readonly compiled = new Map<string, ValidateFunction>();

  constructor(path: string) {
    const { definitions, byGvk } = loadDefinitions(path);
    this.byGvk = byGvk;
    this.ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false, strictTuples: false });
    addFormats(this.ajv, ['date-time']);
    this.ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= INT32.min && n <= INT32.max });
    this.ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isInteger(n) });
    this.ajv.addFormat('double', { type: 'number', validate: () => true });
    this.ajv.addFormat('byte', /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/);
    this.ajv.addKeyword({
      keyword: 'k8sList',
      type: 'array',
      schemaType: 'object',
      errors: true,
      // Items of a list-type map are identified by their key fields; of a set, by their value.
      validate: function uniqueItems(this: unknown, spec: { map?: string[]; set?: boolean }, data: unknown[]): boolean {
        const seen = new Map<string, number>();
        const errors: Partial<ErrorObject>[] = [];
        data.forEach((item, index) => {
          const id = spec.map && isObject(item) ? JSON.stringify(spec.map.map((k) => item[k] ?? null)) : JSON.stringify(item);
          const first = seen.get(id);
          if (first === undefined) seen.set(id, index);
          else errors.push({ message: `item ${index} duplicates item ${first}${spec.map ? ` (same ${spec.map.join('+')})` : ''}`, params: {} });
        });
        (uniqueItems as unknown as { errors: Partial<ErrorObject>[] }).errors = errors;
        return errors.length === 0;
      },
    });
    this.ajv.addSchema({ $id: 'k8s', definitions });
  }

  /** The compiled validator of one definition, e.g. 'io.k8s.api.core.v1.Node'. */
  private validatorOf(definition: string): ValidateFunction {
    let fn = this.compiled.get(definition);
    if (!fn) {
      const found = this.ajv.getSchema(`k8s#/definitions/${definition}`);
      if (!found) throw new Error(`no OpenAPI definition ${definition}`);
      fn = found;
      this.compiled.set(definition, fn);
    }
    return fn;
  }

  definitionFor(apiVersion: string, kind: string): string | undefined {
    const { group, version } = splitApiVersion(apiVersion);
    return this.byGvk.get(gvkKey(group, version, kind));
  }

  validateAs(definition: string, obj: unknown): string[] {
    const fn = this.validatorOf(definition);
    if (fn(withoutNulls(obj))) return [];
    const messages = (fn.errors ?? []).map(describe);
    return [...new Set(messages)];
  }

  validateObject(obj: unknown): string[] {
    if (!isObject(obj)) return ['(root): not an object'];
    const { apiVersion, kind } = obj;
    if (typeof apiVersion !== 'string' || apiVersion === '') return ['apiVersion: required field missing'];
    if (typeof kind !== 'string' || kind === '') return ['kind: required field missing'];
    const definition = this.definitionFor(apiVersion, kind);
    if (!definition) return [`(root): no kind ${kind} in ${apiVersion} in the OpenAPI document`];
    return this.validateAs(definition, obj);
  }
}

let shared: OpenApiValidator | undefined;

/** The validator over the shared document, loaded once per process (4 MB of JSON). */
function validator(): OpenApiValidator {
  shared ??= new OpenApiValidator(swaggerPath);
  return shared;
}

/**
 * Errors of one Kubernetes object, chosen by its apiVersion and kind (typed lists such as
 * v1 NodeList included); empty when valid. Each message starts with the field path.
 */
export function validateObject(obj: unknown): string[] {
  return validator().validateObject(obj);
}

/**
 * Errors of a list: a typed list (NodeList, PodList, LeaseList...) is validated as its own kind;
 * the untyped `v1 List` kubectl prints has each item validated as an object of its own kind.
 * Item errors are prefixed with items[i].
 */
export function validateList(list: unknown): string[] {
  if (!isObject(list)) return ['(root): not an object'];
  if (list.apiVersion === 'v1' && list.kind === 'List') {
    const errors: string[] = [];
    for (const key of Object.keys(list)) {
      if (!['apiVersion', 'kind', 'metadata', 'items'].includes(key)) errors.push(`${key}: unknown field`);
    }
    if (list.metadata !== undefined && list.metadata !== null) {
      errors.push(...validateAs('io.k8s.apimachinery.pkg.apis.meta.v1.ListMeta', list.metadata).map((m) => under('metadata', m)));
    }
    if (!Array.isArray(list.items)) return [...errors, 'items: required field missing'];
    list.items.forEach((item, i) => errors.push(...validateObject(item).map((m) => under(`items[${i}]`, m))));
    return errors;
  }
  if (typeof list.kind !== 'string' || !list.kind.endsWith('List')) return [`kind: ${String(list.kind)} is not a list kind`];
  return validateObject(list);
}

/** Errors of a value against one named definition, e.g. a patch body or a meta/v1 Status. */
export function validateAs(definition: string, value: unknown): string[] {
  return validator().validateAs(definition, value);
}

const WATCH_TYPES = new Set(['ADDED', 'MODIFIED', 'DELETED', 'BOOKMARK', 'ERROR']);

/** Errors of one watch event: {type, object}, the object validated by its own apiVersion and kind. */
export function validateWatchEvent(event: unknown): string[] {
  if (!isObject(event)) return ['(root): not an object'];
  const errors = Object.keys(event).filter((k) => k !== 'type' && k !== 'object').map((k) => `${k}: unknown field`);
  if (typeof event.type !== 'string' || !WATCH_TYPES.has(event.type)) errors.push(`type: not a watch event type: ${String(event.type)}`);
  errors.push(...validateObject(event.object).map((m) => under('object', m)));
  return errors;
}
