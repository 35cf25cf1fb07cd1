/**
 * The safetensors format (https://github.com/huggingface/safetensors): an
 * 8-byte little-endian header length N, N bytes of UTF-8 JSON describing each
 * tensor's dtype, shape and byte range, then the little-endian data buffer.
 */
import fs from 'node:fs';
import { DataError, ShapeError, ValueError, describe } from '../../tensor/errors.js';
import { writeFileAtomic } from './atomic.js';
import type { NpyData } from './npy.js';
import { HOST_LITTLE_ENDIAN, elementType, swapBytes, type ElementType } from './binary.js';

export type SafetensorsDtype = 'F32' | 'F64' | 'I8' | 'I16' | 'I32' | 'I64' | 'U8' | 'U16' | 'U32' | 'BOOL';

/** A C-order tensor. BOOL tensors hold 0/1 in a Uint8Array. */
export interface SafetensorsTensor {
  data: NpyData;
  shape: number[];
  dtype: SafetensorsDtype;
}

type TypedCtor = { new (buffer: ArrayBuffer): NpyData; readonly name: string };

const DTYPES: Record<SafetensorsDtype, { size: number; ctor: TypedCtor }> = {
  F32: { size: 4, ctor: Float32Array },
  F64: { size: 8, ctor: Float64Array },
  I8: { size: 1, ctor: Int8Array },
  I16: { size: 2, ctor: Int16Array },
  I32: { size: 4, ctor: Int32Array },
  I64: { size: 8, ctor: BigInt64Array },
  U8: { size: 1, ctor: Uint8Array },
  U16: { size: 2, ctor: Uint16Array },
  U32: { size: 4, ctor: Uint32Array },
  BOOL: { size: 1, ctor: Uint8Array },
};
const DTYPE_NAMES = Object.keys(DTYPES) as SafetensorsDtype[];
/** Valid safetensors dtypes with no JavaScript typed array here. */
const UNSUPPORTED = ['F16', 'BF16', 'U64', 'F8_E4M3', 'F8_E5M2'];

const METADATA_KEY = '__metadata__';

const SAFETENSORS_NAME: Record<ElementType, SafetensorsDtype> = {
  float32: 'F32', float64: 'F64', int8: 'I8', int16: 'I16', int32: 'I32', int64: 'I64', uint8: 'U8', uint16: 'U16', uint32: 'U32',
};

function dtypeOf(data: unknown): SafetensorsDtype | undefined {
  const t = elementType(data);
  return t === undefined ? undefined : SAFETENSORS_NAME[t];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numel(shape: number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

function isShape(shape: unknown): shape is number[] {
  return Array.isArray(shape) && shape.every((d) => Number.isSafeInteger(d) && d >= 0) && Number.isSafeInteger(numel(shape));
}

function checkMetadata(fn: string, metadata: unknown): asserts metadata is Record<string, string> {
  if (!isPlainObject(metadata)) throw new ValueError(`${fn}: metadata must be an object of strings, got ${describe(metadata)}`);
  for (const [k, v] of Object.entries(metadata)) {
    if (typeof v !== 'string') throw new ValueError(`${fn}: metadata[${JSON.stringify(k)}] must be a string, got ${describe(v)}`);
  }
}

/**
 * Encode tensors as a safetensors file. Tensors are stored in sorted name
 * order, back to back; the JSON header is padded with spaces so the data starts
 * at a multiple of 8. `dtype` defaults to the typed array's; pass 'BOOL' for a
 * Uint8Array of 0/1.
 */
export function encodeSafetensors(
  tensors: Record<string, { data: NpyData; shape: number[]; dtype?: string }>,
  metadata?: Record<string, string>,
): Uint8Array {
  const fn = 'encodeSafetensors';
  if (!isPlainObject(tensors)) throw new ValueError(`${fn}: tensors must be an object mapping names to { data, shape, dtype? }, got ${describe(tensors)}`);
  if (metadata !== undefined) checkMetadata(fn, metadata);

  const names = Object.keys(tensors).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const entries: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    entries.push(`${JSON.stringify(METADATA_KEY)}:{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const name of names) {
    if (name === METADATA_KEY) throw new ValueError(`${fn}: tensor name ${JSON.stringify(METADATA_KEY)} is reserved for metadata`);
    const t = tensors[name] as unknown;
    const where = `tensors[${JSON.stringify(name)}]`;
    if (!isPlainObject(t)) throw new ValueError(`${fn}: ${where} must be { data, shape, dtype? }, got ${describe(t)}`);
    const inferred = dtypeOf(t.data);
    if (inferred === undefined) throw new ValueError(`${fn}: ${where}.data must be a Float32Array, Float64Array, Int8Array, Int16Array, Int32Array, BigInt64Array, Uint8Array, Uint16Array or Uint32Array, got ${describe(t.data)}`);
    const data = t.data as NpyData;
    let dtype = inferred;
    if (t.dtype !== undefined) {
      if (typeof t.dtype !== 'string' || !DTYPE_NAMES.includes(t.dtype as SafetensorsDtype)) {
        throw new ValueError(`${fn}: ${where}.dtype must be one of ${DTYPE_NAMES.join(', ')}, got ${describe(t.dtype)}`);
      }
      dtype = t.dtype as SafetensorsDtype;
      if ((dtype === 'BOOL' ? 'U8' : dtype) !== inferred) {
        throw new ValueError(`${fn}: ${where}.dtype ${dtype} needs a ${DTYPES[dtype].ctor.name}, got ${describe(data)}`);
      }
      const bad = dtype === 'BOOL' ? (data as Uint8Array).findIndex((v) => v > 1) : -1;
      if (bad >= 0) throw new ValueError(`${fn}: ${where} is BOOL and must hold only 0 and 1, got ${data[bad]} at index ${bad}`);
    }
    if (!isShape(t.shape)) throw new ShapeError(`${fn}: ${where}.shape must be an array of non-negative integers, got ${describe(t.shape)}`);
    if (numel(t.shape) !== data.length) {
      throw new ShapeError(`${fn}: ${where}.data length must equal the product of shape ${describe(t.shape)} (${numel(t.shape)}), got ${data.length}`);
    }
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    entries.push(`${JSON.stringify(name)}:${JSON.stringify({ dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] })}`);
    chunks.push(bytes);
    offset += bytes.length;
  }

  const header = new TextEncoder().encode(`{${entries.join(',')}}`);
  const headerLen = Math.ceil(header.length / 8) * 8;
  const out = new Uint8Array(8 + headerLen + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerLen), true);
  out.set(header, 8);
  out.fill(0x20, 8 + header.length, 8 + headerLen);
  let at = 8 + headerLen;
  names.forEach((name, i) => {
    out.set(chunks[i], at);
    if (!HOST_LITTLE_ENDIAN) swapBytes(out.subarray(at, at + chunks[i].length), DTYPES[dtypeOf(tensors[name].data)!].size);
    at += chunks[i].length;
  });
  return out;
}

interface Entry {
  name: string;
  dtype: SafetensorsDtype;
  shape: number[];
  begin: number;
  end: number;
}

function parseEntry(name: string, info: unknown, bufferLength: number): Entry {
  const fail = (problem: string): never => {
    throw new DataError(`parseSafetensors: tensor ${JSON.stringify(name)}: ${problem}`);
  };
  if (!isPlainObject(info)) fail(`entry must be an object { dtype, shape, data_offsets }, got ${describe(info)}`);
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (typeof dtype !== 'string') return fail(`dtype must be a string, got ${describe(dtype)}`);
  if (UNSUPPORTED.includes(dtype)) fail(`dtype ${dtype} is not supported (supported: ${DTYPE_NAMES.join(', ')})`);
  if (!DTYPE_NAMES.includes(dtype as SafetensorsDtype)) fail(`unknown dtype ${JSON.stringify(dtype)} (supported: ${DTYPE_NAMES.join(', ')})`);
  if (!isShape(shape)) return fail(`shape must be an array of non-negative integers, got ${describe(shape)}`);
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) || offsets[0] > offsets[1]) {
    return fail(`data_offsets must be [begin, end] with 0 <= begin <= end, got ${describe(offsets)}`);
  }
  const [begin, end] = offsets as [number, number];
  if (end > bufferLength) fail(`data_offsets [${begin}, ${end}] run past the end of the ${bufferLength}-byte data buffer`);
  const needed = numel(shape) * DTYPES[dtype as SafetensorsDtype].size;
  if (end - begin !== needed) {
    fail(`data_offsets [${begin}, ${end}] span ${end - begin} bytes but shape [${shape.join(', ')}] of ${dtype} needs ${needed}`);
  }
  return { name, dtype: dtype as SafetensorsDtype, shape, begin, end };
}

/** Parse a safetensors file. Each tensor's data is copied into a fresh, aligned typed array. */
export function parseSafetensors(bytes: Uint8Array): { tensors: Record<string, SafetensorsTensor>; metadata: Record<string, string> } {
  if (!(bytes instanceof Uint8Array)) throw new ValueError(`parseSafetensors: bytes must be a Uint8Array, got ${describe(bytes)}`);
  if (bytes.length < 8) throw new DataError(`parseSafetensors: file is ${bytes.length} bytes, too short for the 8-byte header length`);
  const headerLen = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (headerLen > BigInt(bytes.length - 8)) {
    throw new DataError(`parseSafetensors: header length ${headerLen} runs past the end of the file (${bytes.length - 8} bytes after the length field)`);
  }
  const dataStart = 8 + Number(headerLen);
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, dataStart));
  } catch {
    throw new DataError('parseSafetensors: header is not valid UTF-8');
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (err) {
    throw new DataError(`parseSafetensors: header is not valid JSON (${(err as Error).message}): ${JSON.stringify(text.slice(0, 80))}`);
  }
  if (!text.startsWith('{') || !isPlainObject(header)) {
    throw new DataError(`parseSafetensors: header must be a JSON object starting with '{', got ${JSON.stringify(text.slice(0, 80))}`);
  }

  const buffer = bytes.subarray(dataStart);
  const metadata: Record<string, string> = {};
  const entries: Entry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name !== METADATA_KEY) {
      entries.push(parseEntry(name, info, buffer.length));
      continue;
    }
    if (info === null) continue;
    if (!isPlainObject(info)) throw new DataError(`parseSafetensors: ${METADATA_KEY} must be an object of strings, got ${describe(info)}`);
    for (const [k, v] of Object.entries(info)) {
      if (typeof v !== 'string') throw new DataError(`parseSafetensors: ${METADATA_KEY}[${JSON.stringify(k)}] must be a string, got ${describe(v)}`);
      Object.defineProperty(metadata, k, { value: v, enumerable: true, writable: true, configurable: true });
    }
  }

  // The byte ranges must tile the buffer exactly: no overlaps, no gaps, nothing left over.
  const sorted = [...entries].sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let previous: Entry | undefined;
  for (const e of sorted) {
    if (e.begin < covered) {
      throw new DataError(`parseSafetensors: tensor ${JSON.stringify(e.name)}: data_offsets [${e.begin}, ${e.end}] overlap tensor ${JSON.stringify(previous!.name)} [${previous!.begin}, ${previous!.end}]`);
    }
    if (e.begin > covered) {
      throw new DataError(`parseSafetensors: tensor ${JSON.stringify(e.name)}: data_offsets [${e.begin}, ${e.end}] leave a gap of ${e.begin - covered} bytes before them`);
    }
    covered = e.end;
    previous = e;
  }
  if (covered !== buffer.length) {
    throw new DataError(`parseSafetensors: the data buffer has ${buffer.length} bytes but the tensors cover only ${covered}; ${buffer.length - covered} bytes are left over`);
  }

  const tensors = Object.fromEntries(
    entries.map((e) => {
      const { size, ctor } = DTYPES[e.dtype];
      const copy = new Uint8Array(e.end - e.begin);
      copy.set(buffer.subarray(e.begin, e.end));
      if (!HOST_LITTLE_ENDIAN) swapBytes(copy, size);
      if (e.dtype === 'BOOL') for (let i = 0; i < copy.length; i++) copy[i] = copy[i] ? 1 : 0;
      return [e.name, { data: new ctor(copy.buffer), shape: e.shape, dtype: e.dtype }];
    }),
  ) as Record<string, SafetensorsTensor>;
  return { tensors, metadata };
}

/** Read a safetensors file. */
export function readSafetensors(path: string): { tensors: Record<string, SafetensorsTensor>; metadata: Record<string, string> } {
  if (typeof path !== 'string' || path.length === 0) throw new ValueError(`readSafetensors: path must be a non-empty string, got ${describe(path)}`);
  const bytes = fs.readFileSync(path);
  try {
    return parseSafetensors(bytes);
  } catch (err) {
    if (err instanceof DataError) throw new DataError(`${err.message} (file ${path})`);
    throw err;
  }
}

/** Write a safetensors file atomically (see encodeSafetensors for the layout). */
export function writeSafetensors(
  path: string,
  tensors: Record<string, { data: NpyData; shape: number[]; dtype?: string }>,
  metadata?: Record<string, string>,
): void {
  if (typeof path !== 'string' || path.length === 0) throw new ValueError(`writeSafetensors: path must be a non-empty string, got ${describe(path)}`);
  writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
