/**
 * Reading JSON-able configs: every field is checked, a missing default is
 * filled in, and an unknown key is an error, so a typo never passes silently.
 * Each failure is a ConfigError naming the function, the field path, what was
 * allowed and what came (`rgc: config.gate.kernelSize must be an integer in
 * [3, 7], got 8`).
 */
import { ConfigError, describe } from '../tensor/errors.js';
import { checkInitSpec, type InitSpec } from './init.js';

export type Json = Record<string, unknown>;

export class ConfigReader {
  /** `fn` names the caller in messages; `path` is the object's path ('config', 'config.gate'). */
  constructor(
    readonly fn: string,
    readonly obj: Json,
    readonly path = 'config',
  ) {}

  static of(fn: string, value: unknown, path = 'config'): ConfigReader {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new ConfigError(`${fn}: ${path} must be an object, got ${describe(value)}`);
    }
    return new ConfigReader(fn, value as Json, path);
  }

  fail(field: string, expected: string): never {
    throw new ConfigError(`${this.fn}: ${this.path}.${field} must be ${expected}, got ${describe(this.obj[field])}`);
  }

  /** Throws on any key not in `allowed`, naming it and the allowed keys. */
  only(allowed: readonly string[]): this {
    for (const k of Object.keys(this.obj)) {
      if (!allowed.includes(k)) {
        throw new ConfigError(`${this.fn}: unknown key ${this.path}.${k}; allowed keys: ${allowed.join(', ')}`);
      }
    }
    return this;
  }

  has(field: string): boolean {
    return this.obj[field] !== undefined;
  }

  int(field: string, dflt?: number, min = -Infinity, max = Infinity): number {
    const v = this.obj[field] ?? dflt;
    if (!Number.isInteger(v) || (v as number) < min || (v as number) > max) {
      this.fail(field, `an ${range('integer', min, max)}`);
    }
    return v as number;
  }

  posInt(field: string, dflt?: number): number {
    const v = this.obj[field] ?? dflt;
    if (!Number.isInteger(v) || (v as number) < 1) this.fail(field, 'a positive integer');
    return v as number;
  }

  /** A positive integer n (meaning [n, n]) or a pair [h, w] of them. */
  pair(field: string, dflt?: number): [number, number] {
    const v = this.obj[field] ?? dflt;
    const p = typeof v === 'number' ? [v, v] : v;
    if (!Array.isArray(p) || p.length !== 2 || !p.every((d) => Number.isInteger(d) && d >= 1)) {
      this.fail(field, 'a positive integer or [h, w] of positive integers');
    }
    return [p[0], p[1]];
  }

  num(field: string, dflt?: number, min = -Infinity, max = Infinity): number {
    const v = this.obj[field] ?? dflt;
    if (typeof v !== 'number' || !Number.isFinite(v) || v < min || v > max) {
      this.fail(field, `a ${range('number', min, max)}`);
    }
    return v;
  }

  bool(field: string, dflt?: boolean): boolean {
    const v = this.obj[field] ?? dflt;
    if (typeof v !== 'boolean') this.fail(field, 'a boolean');
    return v;
  }

  str(field: string, dflt?: string): string {
    const v = this.obj[field] ?? dflt;
    if (typeof v !== 'string') this.fail(field, 'a string');
    return v;
  }

  oneOf<T extends string>(field: string, allowed: readonly T[], dflt?: T): T {
    const v = this.obj[field] ?? dflt;
    if (!allowed.includes(v as T)) this.fail(field, `one of ${allowed.map((a) => `'${a}'`).join(', ')}`);
    return v as T;
  }

  init(field: string, dflt: InitSpec): InitSpec {
    const v = this.obj[field] ?? dflt;
    checkInitSpec(this.fn, `${this.path}.${field}`, v);
    return v;
  }

  /** A nested object, read by its own reader (absent: an empty object). */
  sub(field: string): ConfigReader {
    const v = this.obj[field] ?? {};
    return ConfigReader.of(this.fn, v, `${this.path}.${field}`);
  }

  array(field: string, dflt?: readonly unknown[]): unknown[] {
    const v = this.obj[field] ?? dflt;
    if (!Array.isArray(v)) this.fail(field, 'an array');
    return v;
  }
}

/** 'number', 'number >= 0', 'number <= 1' or 'number in [0, 1]'. */
function range(what: string, min: number, max: number): string {
  if (min === -Infinity && max === Infinity) return what === 'number' ? 'finite number' : what;
  if (max === Infinity) return `${what} >= ${min}`;
  if (min === -Infinity) return `${what} <= ${max}`;
  return `${what} in [${min}, ${max}]`;
}
