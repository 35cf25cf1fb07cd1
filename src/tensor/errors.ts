/**
 * Typed errors. Every public function checks its arguments and throws one of
 * these, with a message naming the argument, what was expected and what came.
 */
export class ConvrnnError extends Error {
  constructor(message: string) {
    super(message);
    this.name = new.target.name;
  }
}

/** A tensor or array had the wrong rank, size or shape. */
export class ShapeError extends ConvrnnError {}

/** A scalar or option had a wrong value (NaN seed, negative stride, unknown mode). */
export class ValueError extends ConvrnnError {}

/** A model, training or CLI configuration is invalid (unknown key, bad field). */
export class ConfigError extends ConvrnnError {}

/** A file or dataset is malformed (truncated .npy, bad safetensors header, NaN loss). */
export class DataError extends ConvrnnError {}

/** Describe a value for an error message: short, never the whole of a large array. */
export function describe(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isNaN(value) ? 'NaN' : String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (Array.isArray(value)) {
    if (value.length > 8) return `[${value.slice(0, 8).map(describe).join(', ')}, … (${value.length} items)]`;
    return `[${value.map(describe).join(', ')}]`;
  }
  if (typeof value === 'object') {
    const name = (value as object).constructor?.name;
    if (name === 'Tensor') return `Tensor of shape [${(value as { shape: number[] }).shape.join(', ')}]`;
    return name && name !== 'Object' ? name : 'object';
  }
  return typeof value;
}
