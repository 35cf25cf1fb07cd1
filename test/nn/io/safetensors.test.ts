import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { encodeSafetensors, parseSafetensors, readSafetensors, writeSafetensors } from '../../../src/nn/io/safetensors.js';
import type { SafetensorsDtype, SafetensorsTensor } from '../../../src/nn/io/safetensors.js';
import type { NpyData } from '../../../src/nn/io/npy.js';
import { DataError, ShapeError, ValueError } from '../../../src/tensor/errors.js';

const bytesOf = (d: NpyData): number[] => [...new Uint8Array(d.buffer, d.byteOffset, d.byteLength)];
const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** A file with the given header (JSON text, or an object to stringify), data bytes, and optionally a lying length field. */
function makeFile(header: string | object, data: number[] = [], lengthField?: number): Uint8Array {
  const text = typeof header === 'string' ? header : JSON.stringify(header);
  const h = new TextEncoder().encode(text);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(lengthField ?? h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

describe('encodeSafetensors layout', () => {
  it('matches a file assembled by hand: length, sorted JSON, space padding to 8, contiguous little-endian data', () => {
    const file = encodeSafetensors(
      { b: { data: new Float32Array([1, 2]), shape: [2] }, a: { data: new Int16Array([1, 2, 3]), shape: [3] } },
      { format: 'pt' },
    );
    const json = '{"__metadata__":{"format":"pt"},"a":{"dtype":"I16","shape":[3],"data_offsets":[0,6]},"b":{"dtype":"F32","shape":[2],"data_offsets":[6,14]}}';
    expect(json.length).toBe(139);
    const expected = [
      0x90, 0, 0, 0, 0, 0, 0, 0, // header length 144 = 139 rounded up to a multiple of 8
      ...ascii(json),
      0x20, 0x20, 0x20, 0x20, 0x20,
      1, 0, 2, 0, 3, 0, // a: int16 1, 2, 3
      0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, // b: float32 1, 2
    ];
    expect([...file]).toEqual(expected);
  });

  it('omits __metadata__ when none is given and writes the explicit dtype', () => {
    const file = encodeSafetensors({ m: { data: new Uint8Array([1, 0]), shape: [1, 2], dtype: 'BOOL' } });
    const json = '{"m":{"dtype":"BOOL","shape":[1,2],"data_offsets":[0,2]}}';
    expect(json.length).toBe(57);
    expect([...file]).toEqual([64, 0, 0, 0, 0, 0, 0, 0, ...ascii(json), ...ascii(' '.repeat(7)), 1, 0]);
  });

  it('keeps integer-like names in string order, not numeric', () => {
    const file = encodeSafetensors({ '10': { data: new Uint8Array([1]), shape: [1] }, '9': { data: new Uint8Array([2]), shape: [1] } });
    const text = new TextDecoder().decode(file.subarray(8, file.length - 2));
    expect(text.indexOf('"10"')).toBeLessThan(text.indexOf('"9"'));
    expect([...file.subarray(file.length - 2)]).toEqual([1, 2]);
  });
});

const DTYPES: SafetensorsDtype[] = ['F32', 'F64', 'I8', 'I16', 'I32', 'I64', 'U8', 'U16', 'U32', 'BOOL'];
const CTORS = {
  F32: Float32Array, F64: Float64Array, I8: Int8Array, I16: Int16Array, I32: Int32Array,
  I64: BigInt64Array, U8: Uint8Array, U16: Uint16Array, U32: Uint32Array, BOOL: Uint8Array,
} as const;
const SIZES = { F32: 4, F64: 8, I8: 1, I16: 2, I32: 4, I64: 8, U8: 1, U16: 2, U32: 4, BOOL: 1 } as const;

const arbTensor: fc.Arbitrary<SafetensorsTensor> = fc
  .tuple(fc.constantFrom(...DTYPES), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }))
  .chain(([dtype, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1) * SIZES[dtype];
    const bytes = dtype === 'BOOL' ? fc.uint8Array({ min: 0, max: 1, minLength: n, maxLength: n }) : fc.uint8Array({ minLength: n, maxLength: n });
    return bytes.map((b) => ({ data: new CTORS[dtype](b.buffer as ArrayBuffer), shape, dtype }));
  });
const arbName = fc.string({ unit: 'grapheme', maxLength: 12 }).filter((s) => s !== '__metadata__');

describe('round trips', () => {
  it('parseSafetensors(encodeSafetensors(t, m)) gives back every tensor bit for bit, and the metadata', () => {
    fc.assert(
      fc.property(
        fc.dictionary(arbName, arbTensor, { maxKeys: 5 }),
        fc.option(fc.dictionary(fc.string({ maxLength: 8 }), fc.string({ maxLength: 8 }), { maxKeys: 3 }), { nil: undefined }),
        (tensors, metadata) => {
          const file = encodeSafetensors(tensors, metadata);
          const headerLen = Number(new DataView(file.buffer).getBigUint64(0, true));
          expect(headerLen % 8).toBe(0);
          const back = parseSafetensors(file);
          expect(Object.keys(back.tensors).sort()).toEqual(Object.keys(tensors).sort());
          for (const [name, t] of Object.entries(tensors)) {
            const got = back.tensors[name];
            expect(got.dtype).toBe(t.dtype);
            expect(got.shape).toEqual(t.shape);
            expect(got.data.constructor).toBe(t.data.constructor);
            expect(got.data.byteOffset).toBe(0);
            expect(bytesOf(got.data)).toEqual(bytesOf(t.data));
          }
          expect(back.metadata).toEqual(metadata ?? {});
        },
      ),
    );
  });

  it('reads files whose tensors are out of name order, with zero-size tensors and header padding', () => {
    const header = {
      z: { dtype: 'I32', shape: [1], data_offsets: [0, 4] },
      e: { dtype: 'F64', shape: [0, 2], data_offsets: [4, 4] },
      a: { dtype: 'U16', shape: [], data_offsets: [4, 6] },
      __metadata__: null,
    };
    const { tensors, metadata } = parseSafetensors(makeFile(`${JSON.stringify(header)}   `, [0xff, 0xff, 0xff, 0xff, 0x34, 0x12]));
    expect(metadata).toEqual({});
    expect(tensors.z).toEqual({ data: new Int32Array([-1]), shape: [1], dtype: 'I32' });
    expect(tensors.e).toEqual({ data: new Float64Array(0), shape: [0, 2], dtype: 'F64' });
    expect(tensors.a).toEqual({ data: new Uint16Array([0x1234]), shape: [], dtype: 'U16' });
  });

  it('writeSafetensors then readSafetensors through a file', () => {
    const dir = fs.mkdtempSync(join(os.tmpdir(), 'st-test-'));
    try {
      const path = join(dir, 'w.safetensors');
      const tensors = { 'layer.weight': { data: new Float32Array([0.25, NaN, -Infinity]), shape: [3, 1] } };
      writeSafetensors(path, tensors, { step: '12' });
      expect([...fs.readFileSync(path)]).toEqual([...encodeSafetensors(tensors, { step: '12' })]);
      const back = readSafetensors(path);
      expect(back.metadata).toEqual({ step: '12' });
      expect(back.tensors['layer.weight']).toEqual({ ...tensors['layer.weight'], dtype: 'F32' });
      expect(fs.readdirSync(dir)).toEqual(['w.safetensors']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('malformed files are DataErrors naming the tensor and the problem', () => {
  const f32 = (begin: number, end: number, shape = [1]) => ({ dtype: 'F32', shape, data_offsets: [begin, end] });
  const eight = new Array<number>(8).fill(0);
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['shorter than the length field', new Uint8Array([1, 0, 0]), /3 bytes, too short for the 8-byte header length/],
    ['header length past EOF', makeFile({ a: f32(0, 4) }, [0, 0, 0, 0], 1000), /header length 1000 runs past the end of the file/],
    ['huge header length', makeFile('{}', [], 2 ** 53), /header length 9007199254740992 runs past the end/],
    ['non-JSON header', makeFile('{"a": {"dtype": "F32",', []), /header is not valid JSON/],
    ['empty header', makeFile('', []), /header is not valid JSON/],
    ['header not an object', makeFile('[1, 2]', []), /header must be a JSON object/],
    ['header with leading space', makeFile(' {}', []), /header must be a JSON object starting with '\{'/],
    ['invalid UTF-8 header', makeFile('{"\xff": 1}', []).map((b, i) => (i === 10 ? 0xff : b)), /not valid UTF-8/],
    ['overlapping offsets', makeFile({ a: f32(0, 4), b: f32(2, 6) }, eight.slice(0, 6)), /tensor "b": data_offsets \[2, 6\] overlap tensor "a" \[0, 4\]/],
    ['offset past end', makeFile({ a: f32(0, 4), b: f32(4, 8) }, eight.slice(0, 6)), /tensor "b": data_offsets \[4, 8\] run past the end of the 6-byte data buffer/],
    ['wrong byte length', makeFile({ a: f32(0, 8, [3]) }, eight), /tensor "a": data_offsets \[0, 8\] span 8 bytes but shape \[3\] of F32 needs 12/],
    ['gap between tensors', makeFile({ a: f32(0, 4), b: f32(5, 9) }, [...eight, 0]), /tensor "b".*leave a gap of 1 bytes/],
    ['bytes not covered', makeFile({ a: f32(0, 4) }, eight), /buffer has 8 bytes but the tensors cover only 4; 4 bytes are left over/],
    ['begin after end', makeFile({ a: f32(4, 0) }, eight), /tensor "a": data_offsets must be \[begin, end\] with 0 <= begin <= end, got \[4, 0\]/],
    ['F16', makeFile({ half: { dtype: 'F16', shape: [1], data_offsets: [0, 2] } }, [0, 0]), /tensor "half": dtype F16 is not supported/],
    ['BF16', makeFile({ w: { dtype: 'BF16', shape: [1], data_offsets: [0, 2] } }, [0, 0]), /tensor "w": dtype BF16 is not supported/],
    ['unknown dtype', makeFile({ w: { dtype: 'Q7', shape: [1], data_offsets: [0, 1] } }, [0]), /tensor "w": unknown dtype "Q7"/],
    ['bad shape', makeFile({ w: { dtype: 'U8', shape: [-1], data_offsets: [0, 0] } }, []), /tensor "w": shape must be an array of non-negative integers/],
    ['entry not an object', makeFile({ w: 5 }, []), /tensor "w": entry must be an object/],
    ['non-string metadata', makeFile({ __metadata__: { epoch: 3 } }, []), /__metadata__\["epoch"\] must be a string, got 3/],
    ['metadata not an object', makeFile({ __metadata__: 'x' }, []), /__metadata__ must be an object of strings/],
  ];
  it.each(cases)('%s', (_name, bytes, message) => {
    expect(() => parseSafetensors(bytes)).toThrow(DataError);
    expect(() => parseSafetensors(bytes)).toThrow(message);
  });

  it('a valid hand-made file with the same pieces parses, so the cases above fail for their stated reason', () => {
    const { tensors } = parseSafetensors(makeFile({ a: f32(0, 4), b: f32(4, 8) }, [0, 0, 0x80, 0x3f, 0, 0, 0, 0x40]));
    expect([...tensors.a.data, ...tensors.b.data]).toEqual([1, 2]);
  });
});

describe('argument checks', () => {
  const one = { data: new Float32Array(1), shape: [1] };
  it('encodeSafetensors', () => {
    expect(() => encodeSafetensors(null as unknown as Record<string, typeof one>)).toThrow(/tensors must be an object/);
    expect(() => encodeSafetensors({ __metadata__: one })).toThrow(/"__metadata__" is reserved/);
    expect(() => encodeSafetensors({ w: { data: new Float32Array(3), shape: [2, 2] } })).toThrow(ShapeError);
    expect(() => encodeSafetensors({ w: { data: new Float32Array(3), shape: [2, 2] } })).toThrow(/tensors\["w"\]\.data length must equal the product of shape \[2, 2\] \(4\), got 3/);
    expect(() => encodeSafetensors({ w: { data: new Float32Array(1), shape: [-1] } })).toThrow(/tensors\["w"\]\.shape must be an array of non-negative integers/);
    expect(() => encodeSafetensors({ w: { data: [1] as unknown as Float32Array, shape: [1] } })).toThrow(/tensors\["w"\]\.data must be a Float32Array/);
    expect(() => encodeSafetensors({ w: { ...one, dtype: 'F16' } })).toThrow(/tensors\["w"\]\.dtype must be one of F32/);
    expect(() => encodeSafetensors({ w: { ...one, dtype: 'I32' } })).toThrow(/dtype I32 needs a Int32Array, got Float32Array/);
    expect(() => encodeSafetensors({ w: { data: new Uint8Array([3]), shape: [1], dtype: 'BOOL' } })).toThrow(/BOOL and must hold only 0 and 1, got 3 at index 0/);
    expect(() => encodeSafetensors({ w: one }, { epoch: 3 as unknown as string })).toThrow(ValueError);
    expect(() => encodeSafetensors({ w: one }, { epoch: 3 as unknown as string })).toThrow(/metadata\["epoch"\] must be a string, got 3/);
  });

  it('parse, read and write', () => {
    expect(() => parseSafetensors('x' as unknown as Uint8Array)).toThrow(/bytes must be a Uint8Array, got "x"/);
    expect(() => readSafetensors('')).toThrow(ValueError);
    expect(() => writeSafetensors(undefined as unknown as string, {})).toThrow(/path must be a non-empty string, got undefined/);
  });
});
