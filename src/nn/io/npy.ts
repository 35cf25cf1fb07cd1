/**
 * NumPy .npy files (format versions 1.0, 2.0 and 3.0), C order only, and a
 * bridge to scijs-ndarray-shaped objects without depending on that package.
 * Format: https://numpy.org/doc/stable/reference/generated/numpy.lib.format.html
 */
import fs from 'node:fs';
import { DataError, ShapeError, ValueError, describe } from '../../tensor/errors.js';
import { writeFileAtomic } from './atomic.js';
import { HOST_LITTLE_ENDIAN, elementType, swapBytes } from './binary.js';

export type NpyDtype = 'float32' | 'float64' | 'int8' | 'int16' | 'int32' | 'int64' | 'uint8' | 'uint16' | 'uint32' | 'bool';

export type NpyData =
  | Float32Array
  | Float64Array
  | Int8Array
  | Int16Array
  | Int32Array
  | BigInt64Array
  | Uint8Array
  | Uint16Array
  | Uint32Array;

/** A C-order array. `bool` arrays hold 0/1 in a Uint8Array. */
export interface NpyArray {
  data: NpyData;
  shape: number[];
  dtype: NpyDtype;
}

type TypedCtor = { new (length: number): NpyData; new (buffer: ArrayBuffer): NpyData };

interface DtypeInfo {
  /** The descr type code without byte order, as NumPy writes it. */
  code: string;
  size: number;
  ctor: TypedCtor;
}

const DTYPES: Record<NpyDtype, DtypeInfo> = {
  float32: { code: 'f4', size: 4, ctor: Float32Array },
  float64: { code: 'f8', size: 8, ctor: Float64Array },
  int8: { code: 'i1', size: 1, ctor: Int8Array },
  int16: { code: 'i2', size: 2, ctor: Int16Array },
  int32: { code: 'i4', size: 4, ctor: Int32Array },
  int64: { code: 'i8', size: 8, ctor: BigInt64Array },
  uint8: { code: 'u1', size: 1, ctor: Uint8Array },
  uint16: { code: 'u2', size: 2, ctor: Uint16Array },
  uint32: { code: 'u4', size: 4, ctor: Uint32Array },
  bool: { code: 'b1', size: 1, ctor: Uint8Array },
};
const DTYPE_NAMES = Object.keys(DTYPES) as NpyDtype[];

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // "\x93NUMPY"
// NumPy >= 1.24 leaves room after the dict so the first axis can grow in place.
const GROWTH_AXIS_MAX_DIGITS = 21;
const ARRAY_ALIGN = 64;


/** Check `data`/`dtype` agree and return the dtype to use. */
function resolveDtype(fn: string, data: unknown, dtype: unknown): NpyDtype {
  const inferred: NpyDtype | undefined = elementType(data);
  if (inferred === undefined) {
    throw new ValueError(`${fn}: data must be a Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, BigInt64Array, Uint8Array, Uint16Array or Uint32Array, got ${describe(data)}`);
  }
  if (dtype === undefined) return inferred;
  if (typeof dtype !== 'string' || !DTYPE_NAMES.includes(dtype as NpyDtype)) {
    throw new ValueError(`${fn}: dtype must be one of ${DTYPE_NAMES.join(', ')}, got ${describe(dtype)}`);
  }
  const wanted = dtype === 'bool' ? 'uint8' : dtype;
  if (wanted !== inferred) {
    throw new ValueError(`${fn}: dtype ${describe(dtype)} needs a ${DTYPES[dtype as NpyDtype].ctor.name}, got ${describe(data)}`);
  }
  return dtype as NpyDtype;
}

function checkBoolValues(fn: string, dtype: NpyDtype, data: NpyData): void {
  if (dtype !== 'bool') return;
  const bad = (data as Uint8Array).findIndex((v) => v > 1);
  if (bad >= 0) throw new ValueError(`${fn}: bool data must hold only 0 and 1, got ${data[bad]} at index ${bad}`);
}

/** Validate a shape and return its element count. */
function checkShape(fn: string, shape: unknown): number {
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw new ShapeError(`${fn}: shape must be an array of non-negative integers, got ${describe(shape)}`);
  }
  const size = shape.reduce((a: number, b: number) => a * b, 1);
  if (!Number.isSafeInteger(size)) throw new ShapeError(`${fn}: shape ${describe(shape)} has too many elements`);
  return size;
}

// ---------------------------------------------------------------------------
// Header: a Python dict literal, parsed by hand (never evaluated).

type PyValue = string | number | boolean | null | PyValue[] | { tuple: PyValue[] } | Map<string, PyValue>;

function isTuple(v: PyValue): v is { tuple: PyValue[] } {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Map);
}

class HeaderParser {
  private at = 0;
  constructor(private readonly text: string) {}

  private depth = 0;

  fail(what: string): never {
    const text = this.text.trimEnd();
    const shown = text.length > 200 ? `${text.slice(0, 200)}…` : text;
    throw new DataError(`parseNpy: header is not a valid Python dict literal: ${what} at offset ${this.at} in ${JSON.stringify(shown)}`);
  }

  skipSpace(): void {
    while (this.at < this.text.length && ' \t\r\n'.includes(this.text[this.at])) this.at++;
  }

  /** Consume `ch` (after optional whitespace) if it is next. */
  eat(ch: string): boolean {
    this.skipSpace();
    if (this.text[this.at] === ch) {
      this.at++;
      return true;
    }
    return false;
  }

  parseDocument(): Map<string, PyValue> {
    const value = this.parseValue();
    this.skipSpace();
    if (this.at !== this.text.length) this.fail('unexpected text after the dict');
    if (!(value instanceof Map)) this.fail('expected a dict');
    return value;
  }

  parseValue(): PyValue {
    this.skipSpace();
    const ch = this.text[this.at];
    if (ch === '{' || ch === '(' || ch === '[') {
      // A real header nests two levels; the limit keeps hostile input from exhausting the stack.
      if (++this.depth > 16) this.fail('nesting too deep');
      const value = ch === '{' ? this.parseDict() : this.parseSequence(ch);
      this.depth--;
      return value;
    }
    if (ch === "'" || ch === '"') return this.parseString();
    const word = /^(?:True|False|None|[+-]?\d+)/.exec(this.text.slice(this.at));
    if (!word) this.fail(ch === undefined ? 'unexpected end' : `unexpected ${JSON.stringify(ch)}`);
    const after = this.text[this.at + word[0].length];
    if (after !== undefined && /[\w.]/.test(after)) this.fail(`unsupported literal starting ${JSON.stringify(word[0] + after)}`);
    this.at += word[0].length;
    if (word[0] === 'True') return true;
    if (word[0] === 'False') return false;
    if (word[0] === 'None') return null;
    return Number(word[0]);
  }

  parseString(): string {
    const quote = this.text[this.at++];
    let out = '';
    for (;;) {
      const ch = this.text[this.at++];
      if (ch === undefined || ch === '\n') this.fail('unterminated string');
      if (ch === quote) return out;
      if (ch === '\\') {
        const next = this.text[this.at++];
        if (next !== '\\' && next !== "'" && next !== '"') this.fail(`unsupported escape \\${next ?? ''}`);
        out += next;
      } else {
        out += ch;
      }
    }
  }

  parseSequence(open: '(' | '['): PyValue {
    const close = open === '(' ? ')' : ']';
    this.at++;
    const items: PyValue[] = [];
    let sawComma = false;
    while (!this.eat(close)) {
      if (items.length > 0 && !sawComma) this.fail(`expected ',' or '${close}'`);
      items.push(this.parseValue());
      sawComma = this.eat(',');
    }
    if (open === '[') return items;
    // "(3)" is just 3 in Python; only "(3,)" is a one-element tuple.
    if (items.length === 1 && !sawComma) return items[0];
    return { tuple: items };
  }

  parseDict(): Map<string, PyValue> {
    this.at++;
    const dict = new Map<string, PyValue>();
    let sawComma = false;
    while (!this.eat('}')) {
      if (dict.size > 0 && !sawComma) this.fail("expected ',' or '}'");
      this.skipSpace();
      const q = this.text[this.at];
      if (q !== "'" && q !== '"') this.fail('expected a string key');
      const key = this.parseString();
      if (!this.eat(':')) this.fail("expected ':'");
      dict.set(key, this.parseValue());
      sawComma = this.eat(',');
    }
    return dict;
  }
}

function parseDescr(descr: PyValue | undefined): { dtype: NpyDtype; bigEndian: boolean } {
  if (typeof descr !== 'string') {
    throw new DataError(`parseNpy: descr must be a simple dtype string such as '<f4', got a structured or invalid descr ${describe(descr)}`);
  }
  if (/^[<>|=]?O\d*$/.test(descr)) {
    throw new DataError(`parseNpy: object arrays (descr ${JSON.stringify(descr)}) hold pickled Python objects, which are not supported and never executed`);
  }
  const m = /^([<>|])([a-z]\d+)$/.exec(descr);
  const dtype = m ? DTYPE_NAMES.find((name) => DTYPES[name].code === m[2]) : undefined;
  if (!m || dtype === undefined) {
    const codes = DTYPE_NAMES.map((name) => `'<${DTYPES[name].code}'`).join(', ');
    throw new DataError(`parseNpy: unknown or unsupported descr ${JSON.stringify(descr)}; expected one of ${codes} (or '>'/'|' byte order)`);
  }
  const size = DTYPES[dtype].size;
  if (m[1] === '|' && size > 1) {
    throw new DataError(`parseNpy: descr ${JSON.stringify(descr)} has byte order '|' but a ${size}-byte type needs '<' or '>'`);
  }
  return { dtype, bigEndian: m[1] === '>' && size > 1 };
}

function parseShape(shape: PyValue | undefined): number[] {
  if (shape === undefined || !isTuple(shape)) {
    throw new DataError(`parseNpy: header 'shape' must be a tuple such as (2, 3), got ${describe(shape)}`);
  }
  if (!shape.tuple.every((d) => typeof d === 'number' && Number.isSafeInteger(d) && d >= 0)) {
    throw new DataError(`parseNpy: header 'shape' must hold non-negative integers, got (${shape.tuple.map(describe).join(', ')})`);
  }
  return shape.tuple as number[];
}

/** Parse the bytes of a .npy file. The data is copied into a fresh, aligned typed array. */
export function parseNpy(bytes: Uint8Array): NpyArray {
  if (!(bytes instanceof Uint8Array)) throw new ValueError(`parseNpy: bytes must be a Uint8Array, got ${describe(bytes)}`);
  if (bytes.length < 8 || MAGIC.some((b, i) => bytes[i] !== b)) {
    const head = Array.from(bytes.subarray(0, 6), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new DataError(`parseNpy: bad magic: expected the file to start with 93 4e 55 4d 50 59 ("\\x93NUMPY") and a version, got ${head || 'an empty file'}`);
  }
  const major = bytes[6];
  const minor = bytes[7];
  if (![1, 2, 3].includes(major) || minor !== 0) {
    throw new DataError(`parseNpy: unsupported .npy format version ${major}.${minor}; expected 1.0, 2.0 or 3.0`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const lenBytes = major === 1 ? 2 : 4;
  if (bytes.length < 8 + lenBytes) {
    throw new DataError(`parseNpy: truncated header: the file ends after ${bytes.length} bytes, before the header length`);
  }
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const dataStart = 8 + lenBytes + headerLen;
  if (dataStart > bytes.length) {
    throw new DataError(`parseNpy: truncated header: header length says ${headerLen} bytes but only ${bytes.length - 8 - lenBytes} remain`);
  }
  const raw = bytes.subarray(8 + lenBytes, dataStart);
  let text: string;
  if (major === 3) {
    try {
      text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    } catch {
      throw new DataError('parseNpy: header of a version 3.0 file is not valid UTF-8');
    }
  } else {
    text = Array.from(raw, (c) => String.fromCharCode(c)).join(''); // latin-1
  }

  const dict = new HeaderParser(text).parseDocument();
  const keys = [...dict.keys()].sort();
  if (keys.length !== 3 || !['descr', 'fortran_order', 'shape'].every((k, i) => keys[i] === k)) {
    throw new DataError(`parseNpy: header must have exactly the keys 'descr', 'fortran_order' and 'shape', got ${describe(keys)}`);
  }
  const fortran = dict.get('fortran_order');
  if (typeof fortran !== 'boolean') throw new DataError(`parseNpy: header 'fortran_order' must be True or False, got ${describe(fortran)}`);
  const { dtype, bigEndian } = parseDescr(dict.get('descr'));
  if (fortran) throw new DataError('parseNpy: Fortran-order arrays are not supported; save with np.ascontiguousarray');
  const shape = parseShape(dict.get('shape'));

  const size = shape.reduce((a, b) => a * b, 1);
  const { size: itemsize, ctor } = DTYPES[dtype];
  const expected = size * itemsize;
  const found = bytes.length - dataStart;
  if (found < expected) {
    throw new DataError(`parseNpy: truncated data: shape (${shape.join(', ')}) of ${dtype} needs ${expected} bytes but the file has ${found}`);
  }
  if (found > expected) {
    throw new DataError(`parseNpy: ${found - expected} extra bytes after the data: shape (${shape.join(', ')}) of ${dtype} needs ${expected} bytes but the file has ${found}`);
  }
  // A fresh buffer (not bytes.slice, which for a Node Buffer is a view) so the data is aligned and owned.
  const copy = new Uint8Array(expected);
  copy.set(bytes.subarray(dataStart));
  if (bigEndian === HOST_LITTLE_ENDIAN) swapBytes(copy, itemsize);
  if (dtype === 'bool') for (let i = 0; i < copy.length; i++) copy[i] = copy[i] ? 1 : 0;
  return { data: new ctor(copy.buffer), shape, dtype };
}

function shapeRepr(shape: number[]): string {
  return shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
}

/**
 * Encode an array as .npy bytes, byte-identical to NumPy's `np.save`: version
 * 1.0 (2.0 if the header needs more than 65535 bytes), data starting at a
 * multiple of 64. `dtype` defaults to the typed array's; pass 'bool' for a
 * Uint8Array of 0/1.
 */
export function encodeNpy(array: { data: NpyData; shape: number[]; dtype?: NpyDtype }): Uint8Array {
  if (typeof array !== 'object' || array === null) {
    throw new ValueError(`encodeNpy: array must be an object { data, shape, dtype? }, got ${describe(array)}`);
  }
  const dtype = resolveDtype('encodeNpy', array.data, array.dtype);
  const size = checkShape('encodeNpy', array.shape);
  if (array.data.length !== size) {
    throw new ShapeError(`encodeNpy: data length must equal the product of shape ${describe(array.shape)} (${size}), got ${array.data.length}`);
  }
  checkBoolValues('encodeNpy', dtype, array.data);
  const { code, size: itemsize } = DTYPES[dtype];
  const order = itemsize === 1 ? '|' : '<';
  let dict = `{'descr': '${order}${code}', 'fortran_order': False, 'shape': ${shapeRepr(array.shape)}, }`;
  if (array.shape.length > 0) dict += ' '.repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(array.shape[0]).length));

  // As NumPy: pad = ALIGN - (prefix + dict + '\n') % ALIGN, so a full block of spaces when already aligned.
  let prefix = 10;
  let padded = dict.length + 1 + ARRAY_ALIGN - ((prefix + dict.length + 1) % ARRAY_ALIGN);
  if (padded > 0xffff) {
    prefix = 12;
    padded = dict.length + 1 + ARRAY_ALIGN - ((prefix + dict.length + 1) % ARRAY_ALIGN);
  }
  const out = new Uint8Array(prefix + padded + array.data.byteLength);
  out.set(MAGIC);
  out[6] = prefix === 10 ? 1 : 2;
  const view = new DataView(out.buffer);
  if (prefix === 10) view.setUint16(8, padded, true);
  else view.setUint32(8, padded, true);
  for (let i = 0; i < dict.length; i++) out[prefix + i] = dict.charCodeAt(i);
  out.fill(0x20, prefix + dict.length, prefix + padded - 1);
  out[prefix + padded - 1] = 0x0a;
  const body = out.subarray(prefix + padded);
  body.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength));
  if (!HOST_LITTLE_ENDIAN) swapBytes(body, itemsize);
  return out;
}

/** Read a .npy file. */
export function readNpy(path: string): NpyArray {
  if (typeof path !== 'string' || path.length === 0) throw new ValueError(`readNpy: path must be a non-empty string, got ${describe(path)}`);
  const bytes = fs.readFileSync(path);
  try {
    return parseNpy(bytes);
  } catch (err) {
    if (err instanceof DataError) throw new DataError(`${err.message} (file ${path})`);
    throw err;
  }
}

/** Write a .npy file atomically (see encodeNpy for the format). */
export function writeNpy(path: string, array: { data: NpyData; shape: number[]; dtype?: NpyDtype }): void {
  if (typeof path !== 'string' || path.length === 0) throw new ValueError(`writeNpy: path must be a non-empty string, got ${describe(path)}`);
  writeFileAtomic(path, encodeNpy(array));
}

// ---------------------------------------------------------------------------
// scijs ndarray interop.

/** An object with the fields of a scijs ndarray (data, shape, stride, offset). */
export interface NdarrayLike {
  data: NpyData;
  shape: number[];
  stride: number[];
  offset: number;
}

/** A C-order ndarray view of `a` (shares its data): `ndarray(x.data, x.shape, x.stride, x.offset)`. */
export function toNdarrayLike(a: NpyArray): NdarrayLike & { offset: 0 } {
  if (typeof a !== 'object' || a === null) throw new ValueError(`toNdarrayLike: a must be an NpyArray, got ${describe(a)}`);
  resolveDtype('toNdarrayLike', a.data, a.dtype);
  const size = checkShape('toNdarrayLike', a.shape);
  if (a.data.length !== size) {
    throw new ShapeError(`toNdarrayLike: data length must equal the product of shape ${describe(a.shape)} (${size}), got ${a.data.length}`);
  }
  return { data: a.data, shape: [...a.shape], stride: cStrides(a.shape), offset: 0 };
}

function cStrides(shape: number[]): number[] {
  const stride = new Array<number>(shape.length);
  let step = 1;
  for (let d = shape.length - 1; d >= 0; d--) {
    stride[d] = step;
    step *= shape[d];
  }
  return stride;
}

/**
 * Copy a (possibly strided, offset or reversed) ndarray view into a new C-order
 * NpyArray. `stride` defaults to C order and `offset` to 0; every element the
 * view addresses must lie inside `data`. Pass `dtype: 'bool'` for 0/1 Uint8Array data.
 */
export function fromNdarrayLike(nd: { data: NpyData; shape: number[]; stride?: number[]; offset?: number }, dtype?: NpyDtype): NpyArray {
  if (typeof nd !== 'object' || nd === null) throw new ValueError(`fromNdarrayLike: nd must be an object { data, shape, stride?, offset? }, got ${describe(nd)}`);
  const kind = resolveDtype('fromNdarrayLike', nd.data, dtype);
  const size = checkShape('fromNdarrayLike', nd.shape);
  const shape = [...nd.shape];
  const stride = nd.stride ?? cStrides(shape);
  if (!Array.isArray(stride) || stride.length !== shape.length || !stride.every((s) => Number.isSafeInteger(s))) {
    throw new ShapeError(`fromNdarrayLike: stride must be an array of ${shape.length} integers (one per axis), got ${describe(stride)}`);
  }
  const offset = nd.offset ?? 0;
  if (!Number.isSafeInteger(offset) || offset < 0) throw new ValueError(`fromNdarrayLike: offset must be a non-negative integer, got ${describe(offset)}`);

  const out = new DTYPES[kind].ctor(size);
  if (size === 0) return { data: out, shape, dtype: kind };
  let lo = offset;
  let hi = offset;
  shape.forEach((n, d) => {
    if (stride[d] < 0) lo += (n - 1) * stride[d];
    else hi += (n - 1) * stride[d];
  });
  if (lo < 0 || hi >= nd.data.length) {
    throw new ShapeError(`fromNdarrayLike: shape ${describe(shape)} with stride ${describe(stride)} and offset ${offset} addresses elements ${lo}..${hi}, outside data of length ${nd.data.length}`);
  }
  // Same element type on both sides, so plain indexed copies are safe.
  const src = nd.data as unknown as { [i: number]: number | bigint };
  const dst = out as unknown as { [i: number]: number | bigint };
  const index = new Array<number>(shape.length).fill(0);
  let at = offset;
  for (let i = 0; i < size; i++) {
    dst[i] = src[at];
    for (let d = shape.length - 1; d >= 0; d--) {
      at += stride[d];
      if (++index[d] < shape[d]) break;
      at -= stride[d] * shape[d];
      index[d] = 0;
    }
  }
  checkBoolValues('fromNdarrayLike', kind, out);
  return { data: out, shape, dtype: kind };
}
