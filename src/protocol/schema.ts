/**
 * A small schema combinator library: each schema both checks an `unknown` value that arrived from a peer and
 * gives its TypeScript type (`Infer<typeof S>`), so a message is defined exactly once.
 *
 * Written here rather than taken from npm because the protocol needs only a dozen combinators, the browser
 * bundle should stay small, and every failure must map to one of the protocol's stable error codes with the
 * path of the offending field. Parsing returns the value itself (arrays and byte buffers are not copied);
 * fields an object schema does not name are dropped, so a newer peer may add fields without breaking older ones.
 */
import { ProtocolError } from './errors.ts';

export interface Schema<T> {
  /** Returns `value` typed as T, or throws a ProtocolError naming `path`. */
  parse(value: unknown, path?: string): T;
  /** Short human description for error messages ("integer in [0, 4096]"). */
  readonly describe: string;
}

export type Infer<S> = S extends Schema<infer T> ? T : never;

/** Marks an object field as optional (absent or undefined/nil both mean absent). */
export interface OptionalSchema<T> extends Schema<T | undefined> {
  readonly optional: true;
  readonly inner: Schema<T>;
}

function typeName(v: unknown): string {
  if (v === null) return 'nil';
  if (Array.isArray(v)) return 'array';
  if (v instanceof Uint8Array) return 'bytes';
  return typeof v;
}

function wrongType(path: string, expected: string, v: unknown): ProtocolError {
  return new ProtocolError('WRONG_TYPE', `expected ${expected}, got ${typeName(v)}`, path);
}

export interface NumberOptions {
  min?: number;
  max?: number;
  /** Integers only. */
  int?: boolean;
}

/** A finite number (NaN and Infinity are rejected: they are how corrupted float buffers usually show up). */
export function num(opts: NumberOptions = {}): Schema<number> {
  const { min = -Infinity, max = Infinity, int = false } = opts;
  const describe = `${int ? 'integer' : 'number'}${Number.isFinite(min) || Number.isFinite(max) ? ` in [${min}, ${max}]` : ''}`;
  return {
    describe,
    parse(v, path = '') {
      if (typeof v !== 'number') throw wrongType(path, describe, v);
      if (!Number.isFinite(v) || v < min || v > max || (int && !Number.isInteger(v))) {
        throw new ProtocolError('OUT_OF_RANGE', `expected ${describe}, got ${v}`, path);
      }
      return v;
    },
  };
}

/** Non-negative integer up to 2^53 - 1 (ids, counters, indices). */
export const uint = (max = Number.MAX_SAFE_INTEGER): Schema<number> => num({ min: 0, max, int: true });

export function str(opts: { maxLength?: number; minLength?: number } = {}): Schema<string> {
  const { maxLength = 4096, minLength = 0 } = opts;
  const describe = `string of ${minLength}..${maxLength} characters`;
  return {
    describe,
    parse(v, path = '') {
      if (typeof v !== 'string') throw wrongType(path, 'string', v);
      if (v.length > maxLength || v.length < minLength) {
        throw new ProtocolError('OUT_OF_RANGE', `expected ${describe}, got ${v.length}`, path);
      }
      return v;
    },
  };
}

export function bool(): Schema<boolean> {
  return {
    describe: 'boolean',
    parse(v, path = '') {
      if (typeof v !== 'boolean') throw wrongType(path, 'boolean', v);
      return v;
    },
  };
}

/** Raw bytes (MessagePack bin). Node hands these over as Buffer, browsers as Uint8Array; both pass. */
export function bytes(opts: { maxLength?: number } = {}): Schema<Uint8Array> {
  const { maxLength = 64 * 1024 * 1024 } = opts;
  return {
    describe: `bytes (at most ${maxLength})`,
    parse(v, path = '') {
      if (!(v instanceof Uint8Array)) throw wrongType(path, 'bytes', v);
      if (v.length > maxLength) {
        throw new ProtocolError('OUT_OF_RANGE', `at most ${maxLength} bytes allowed, got ${v.length}`, path);
      }
      return v;
    },
  };
}

export function literal<const L extends string>(value: L): Schema<L> {
  return {
    describe: JSON.stringify(value),
    parse(v, path = '') {
      if (typeof v !== 'string') throw wrongType(path, 'string', v);
      if (v !== value) throw new ProtocolError('INVALID_VALUE', `expected "${value}", got "${v}"`, path);
      return value;
    },
  };
}

export function oneOf<const L extends readonly string[]>(values: L): Schema<L[number]> {
  const describe = `one of ${values.join(', ')}`;
  return {
    describe,
    parse(v, path = '') {
      if (typeof v !== 'string') throw wrongType(path, 'string', v);
      if (!values.includes(v))
        throw new ProtocolError('INVALID_VALUE', `expected ${describe}, got "${v}"`, path);
      return v as L[number];
    },
  };
}

export function arr<T>(item: Schema<T>, opts: { minLength?: number; maxLength?: number } = {}): Schema<T[]> {
  const { minLength = 0, maxLength = 1_000_000 } = opts;
  const describe = `array of ${minLength === maxLength ? minLength : `${minLength}..${maxLength}`} ${item.describe}`;
  return {
    describe,
    parse(v, path = '') {
      if (!Array.isArray(v)) throw wrongType(path, 'array', v);
      if (v.length < minLength || v.length > maxLength) {
        throw new ProtocolError('OUT_OF_RANGE', `expected ${describe}, got length ${v.length}`, path);
      }
      for (let i = 0; i < v.length; i++) item.parse(v[i], `${path}[${i}]`);
      return v as T[];
    },
  };
}

/** A fixed-length vector of finite numbers (positions [3], quaternions [4], colours [4]). */
export function vec<N extends number>(n: N): Schema<number[]> {
  return arr(num(), { minLength: n, maxLength: n });
}

/** String-keyed map of one value type (metric name -> value). */
export function record<T>(value: Schema<T>, opts: { maxKeys?: number } = {}): Schema<Record<string, T>> {
  const { maxKeys = 1024 } = opts;
  return {
    describe: `map of ${value.describe}`,
    parse(v, path = '') {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
        throw wrongType(path, 'map', v);
      }
      const keys = Object.keys(v);
      if (keys.length > maxKeys) {
        throw new ProtocolError('OUT_OF_RANGE', `at most ${maxKeys} keys allowed, got ${keys.length}`, path);
      }
      for (const k of keys) value.parse((v as Record<string, unknown>)[k], path ? `${path}.${k}` : k);
      return v as Record<string, T>;
    },
  };
}

export function optional<T>(inner: Schema<T>): OptionalSchema<T> {
  return {
    optional: true,
    inner,
    describe: `optional ${inner.describe}`,
    parse(v, path = '') {
      return v === undefined || v === null ? undefined : inner.parse(v, path);
    },
  };
}

type Shape = Record<string, Schema<unknown>>;
type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends OptionalSchema<unknown> ? K : never;
}[keyof S];
type Simplify<T> = { [K in keyof T]: T[K] } & {};
export type ObjectOf<S extends Shape> = Simplify<
  { -readonly [K in Exclude<keyof S, OptionalKeys<S>>]: Infer<S[K]> } & {
    -readonly [K in OptionalKeys<S>]?: S[K] extends OptionalSchema<infer T> ? T : never;
  }
>;

export interface ObjectSchema<S extends Shape> extends Schema<ObjectOf<S>> {
  readonly shape: S;
}

/**
 * A map with named fields. The result is a new object with only the named fields (present optional ones
 * included), so unknown fields from newer peers never reach the code that handles the message.
 */
export function obj<S extends Shape>(
  shape: S,
  check?: (value: ObjectOf<S>, path: string) => void,
): ObjectSchema<S> {
  const keys = Object.keys(shape);
  return {
    shape,
    describe: 'map',
    parse(v, path = '') {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
        throw wrongType(path, 'map', v);
      }
      const src = v as Record<string, unknown>;
      const out: Record<string, unknown> = {};
      for (const k of keys) {
        const field = shape[k]!;
        const fieldPath = path ? `${path}.${k}` : k;
        const raw = src[k];
        if ((raw === undefined || raw === null) && !('optional' in field)) {
          throw new ProtocolError('MISSING_FIELD', `required ${field.describe}`, fieldPath);
        }
        const parsed = field.parse(raw, fieldPath);
        if (parsed !== undefined) out[k] = parsed;
      }
      const value = out as ObjectOf<S>;
      check?.(value, path);
      return value;
    },
  };
}

/**
 * A union of object schemas told apart by their `type` field: a missing `type` is MISSING_FIELD, one that names
 * no member is UNKNOWN_TYPE, and everything else is the member's own verdict.
 */
export function taggedUnion<M extends Record<string, ObjectSchema<Shape & { type: Schema<string> }>>>(
  members: M,
): Schema<{ [K in keyof M]: Infer<M[K]> }[keyof M]> {
  const types = Object.keys(members);
  return {
    describe: `message (${types.join(', ')})`,
    parse(v, path = '') {
      if (v === null || typeof v !== 'object' || Array.isArray(v) || v instanceof Uint8Array) {
        throw new ProtocolError('MALFORMED_MESSAGE', `a message is a map, got ${typeName(v)}`, path);
      }
      const type = (v as { type?: unknown }).type;
      const typePath = path ? `${path}.type` : 'type';
      if (type === undefined || type === null)
        throw new ProtocolError('MISSING_FIELD', 'required message type', typePath);
      if (typeof type !== 'string') throw wrongType(typePath, 'string', type);
      const member = Object.hasOwn(members, type) ? members[type] : undefined;
      if (!member) {
        throw new ProtocolError(
          'UNKNOWN_TYPE',
          `unknown message type "${type}"; known: ${types.join(', ')}`,
          typePath,
        );
      }
      return member.parse(v, path) as { [K in keyof M]: Infer<M[K]> }[keyof M];
    },
  };
}
