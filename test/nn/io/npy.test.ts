import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { encodeNpy, fromNdarrayLike, parseNpy, readNpy, toNdarrayLike, writeNpy } from '../../../src/nn/io/npy.js';
import type { NpyArray, NpyData, NpyDtype } from '../../../src/nn/io/npy.js';
import { DataError, ShapeError, ValueError } from '../../../src/tensor/errors.js';

const hex = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, 'hex'));
const bytesOf = (d: NpyData): number[] => [...new Uint8Array(d.buffer, d.byteOffset, d.byteLength)];

// Files written by NumPy 2.4 (np.save, or np.lib.format.write_array with an explicit version).
const FIX = {
  // np.array([[1.5, -2.25, 0.0], [3.0e10, -0.0, 7.125]], dtype=np.float32)
  f32_2x3: hex('934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0000c03f000010c0000000007684df50000000800000e440'),
  // np.array([1, -2, 9007199254740993, -9223372036854775808], dtype=np.int64)
  i64_4: hex('934e554d5059010076007b276465736372273a20273c6938272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028342c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0100000000000000feffffffffffffff01000000000020000000000000000080'),
  // np.array([True, False, True, True, False])
  bool_5: hex('934e554d5059010076007b276465736372273a20277c6231272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028352c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a0100010100'),
  // np.array([1.0, -2.5, 100.0], dtype='>f4')
  be_f4: hex('934e554d5059010076007b276465736372273a20273e6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a3f800000c020000042c80000'),
  // write_array(f, np.arange(6, dtype=np.int16).reshape(3, 2) - 3, version=(2, 0))
  v2_i16: hex('934e554d50590200740000007b276465736372273a20273c6932272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028332c2032292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200afdfffeffffff000001000200'),
  // write_array(f, np.array([0.5, -1], dtype='<f8'), version=(3, 0))
  v3_f8: hex('934e554d50590300740000007b276465736372273a20273c6638272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a000000000000e03f000000000000f0bf'),
  // np.array(200, dtype=np.uint8)
  u8_0d: hex('934e554d5059010076007b276465736372273a20277c7531272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200ac8'),
  // np.array([[1, -1], [2147483647, -2147483648]], dtype=np.int32)
  i32_2x2: hex('934e554d5059010076007b276465736372273a20273c6934272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028322c2032292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a01000000ffffffffffffff7f00000080'),
  // np.zeros((0, 3), dtype=np.float32)
  f32_empty: hex('934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028302c2033292c207d202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a'),
  // np.array(3.5, dtype=np.float32)
  f32_0d: hex('934e554d5059010076007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a00006040'),
  // np.zeros((123456789, 0), dtype=np.int32): a long first axis eats into the growth padding
  i32_long_axis: hex('934e554d5059010076007b276465736372273a20273c6934272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a20283132333435363738392c2030292c207d20202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a'),
  // np.zeros((0,) + (1,) * 10 + (777777777,), dtype=np.float32): prefix + dict + '\n' is exactly 128
  // bytes, and NumPy then adds a whole extra 64 bytes of padding rather than none.
  f32_aligned_dict: hex('934e554d50590100b6007b276465736372273a20273c6634272c2027666f727472616e5f6f72646572273a2046616c73652c20277368617065273a2028302c20312c20312c20312c20312c20312c20312c20312c20312c20312c20312c20373737373737373737292c207d2020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020202020200a'),
};

/** A version 1.0 file with the given header text (padded to 64 with a final newline) and data bytes. */
function makeNpy(dict: string, body: number[] = [], options: { align?: number; newline?: boolean } = {}): Uint8Array {
  const align = options.align ?? 64;
  let header = dict;
  while ((10 + header.length + 1) % align !== 0) header += ' ';
  header += options.newline === false ? ' ' : '\n';
  const out = new Uint8Array(10 + header.length + body.length);
  out.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, header.length & 0xff, header.length >> 8]);
  out.set(Buffer.from(header, 'latin1'), 10);
  out.set(body, 10 + header.length);
  return out;
}
const dictFor = (descr: string, shape: string, fortran = 'False') => `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;

describe('parseNpy on files written by NumPy', () => {
  it('float32 2x3, including -0 and a large value', () => {
    const a = parseNpy(FIX.f32_2x3);
    expect(a.dtype).toBe('float32');
    expect(a.shape).toEqual([2, 3]);
    expect(a.data).toBeInstanceOf(Float32Array);
    expect([...a.data]).toEqual([1.5, -2.25, 0, Math.fround(3e10), -0, 7.125]);
    expect(Object.is(a.data[4], -0)).toBe(true);
  });

  it('int64 beyond 2^53 and the minimum', () => {
    const a = parseNpy(FIX.i64_4);
    expect(a.dtype).toBe('int64');
    expect(a.shape).toEqual([4]);
    expect([...(a.data as BigInt64Array)]).toEqual([1n, -2n, 9007199254740993n, -9223372036854775808n]);
  });

  it('bool as 0/1 in a Uint8Array', () => {
    const a = parseNpy(FIX.bool_5);
    expect(a.dtype).toBe('bool');
    expect(a.data).toBeInstanceOf(Uint8Array);
    expect([...a.data]).toEqual([1, 0, 1, 1, 0]);
  });

  it("big-endian '>f4' is byte-swapped to native values", () => {
    const a = parseNpy(FIX.be_f4);
    expect(a.dtype).toBe('float32');
    expect([...a.data]).toEqual([1, -2.5, 100]);
  });

  it('version 2.0 and 3.0 headers', () => {
    const a = parseNpy(FIX.v2_i16);
    expect(a).toMatchObject({ dtype: 'int16', shape: [3, 2] });
    expect([...a.data]).toEqual([-3, -2, -1, 0, 1, 2]);
    const b = parseNpy(FIX.v3_f8);
    expect(b).toMatchObject({ dtype: 'float64', shape: [2] });
    expect([...b.data]).toEqual([0.5, -1]);
  });

  it('0-d and zero-size arrays', () => {
    expect(parseNpy(FIX.u8_0d)).toEqual({ data: new Uint8Array([200]), shape: [], dtype: 'uint8' });
    expect(parseNpy(FIX.f32_0d)).toEqual({ data: new Float32Array([3.5]), shape: [], dtype: 'float32' });
    expect(parseNpy(FIX.f32_empty)).toEqual({ data: new Float32Array(0), shape: [0, 3], dtype: 'float32' });
    expect(parseNpy(FIX.i32_long_axis)).toEqual({ data: new Int32Array(0), shape: [123456789, 0], dtype: 'int32' });
  });

  it('copies the data into a fresh aligned buffer even from an unaligned view', () => {
    const shifted = new Uint8Array(FIX.f32_2x3.length + 1);
    shifted.set(FIX.f32_2x3, 1);
    const a = parseNpy(shifted.subarray(1));
    expect(a.data.byteOffset).toBe(0);
    expect(a.data.buffer.byteLength).toBe(24);
    expect(a.data[0]).toBe(1.5);
  });
});

describe('encodeNpy matches np.save byte for byte', () => {
  it('float32 2x3 and int32 2x2 built from values', () => {
    const f32 = encodeNpy({ data: new Float32Array([1.5, -2.25, 0, 3e10, -0, 7.125]), shape: [2, 3] });
    expect(Buffer.from(f32).toString('hex')).toBe(Buffer.from(FIX.f32_2x3).toString('hex'));
    const i32 = encodeNpy({ data: new Int32Array([1, -1, 2147483647, -2147483648]), shape: [2, 2] });
    expect(Buffer.from(i32).toString('hex')).toBe(Buffer.from(FIX.i32_2x2).toString('hex'));
  });

  it.each(['i64_4', 'bool_5', 'u8_0d', 'f32_0d', 'f32_empty', 'i32_long_axis', 'f32_aligned_dict'] as const)('%s re-encodes identically', (name) => {
    const again = encodeNpy(parseNpy(FIX[name]));
    expect(Buffer.from(again).toString('hex')).toBe(Buffer.from(FIX[name]).toString('hex'));
  });

  it('switches to version 2.0 when the header would pass 65535 bytes', () => {
    const shape = new Array<number>(22000).fill(1);
    const bytes = encodeNpy({ data: new Float64Array([2.5]), shape });
    expect([bytes[6], bytes[7]]).toEqual([2, 0]);
    const headerLen = new DataView(bytes.buffer).getUint32(8, true);
    expect(headerLen).toBeGreaterThan(65535);
    expect((12 + headerLen) % 64).toBe(0);
    expect(bytes[12 + headerLen - 1]).toBe(0x0a);
    const back = parseNpy(bytes);
    expect(back.shape).toEqual(shape);
    expect([...back.data]).toEqual([2.5]);
  });
});

const DTYPES: NpyDtype[] = ['float32', 'float64', 'int8', 'int16', 'int32', 'int64', 'uint8', 'uint16', 'uint32', 'bool'];
const CTORS = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, int16: Int16Array, int32: Int32Array,
  int64: BigInt64Array, uint8: Uint8Array, uint16: Uint16Array, uint32: Uint32Array, bool: Uint8Array,
} as const;
const SIZES = { float32: 4, float64: 8, int8: 1, int16: 2, int32: 4, int64: 8, uint8: 1, uint16: 2, uint32: 4, bool: 1 } as const;

/** Arbitrary arrays: every dtype, 0-d to 4-d shapes with zero-size axes, any bit patterns (NaN payloads included). */
const arbArray: fc.Arbitrary<NpyArray> = fc
  .tuple(fc.constantFrom(...DTYPES), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 4 }))
  .chain(([dtype, shape]) => {
    const n = shape.reduce((a, b) => a * b, 1) * SIZES[dtype];
    const bytes = dtype === 'bool' ? fc.uint8Array({ min: 0, max: 1, minLength: n, maxLength: n }) : fc.uint8Array({ minLength: n, maxLength: n });
    return bytes.map((b) => ({ data: new CTORS[dtype](b.buffer as ArrayBuffer), shape, dtype }));
  });

describe('round trips', () => {
  it('parseNpy(encodeNpy(a)) gives back the same dtype, shape and bytes, with the data 64-aligned', () => {
    fc.assert(
      fc.property(arbArray, (a) => {
        const bytes = encodeNpy(a);
        const headerLen = bytes[8] | (bytes[9] << 8);
        expect((10 + headerLen) % 64).toBe(0);
        expect(bytes[10 + headerLen - 1]).toBe(0x0a);
        const back = parseNpy(bytes);
        expect(back.dtype).toBe(a.dtype);
        expect(back.shape).toEqual(a.shape);
        expect(back.data.constructor).toBe(a.data.constructor);
        expect(bytesOf(back.data)).toEqual(bytesOf(a.data));
      }),
    );
  });

  it('a big-endian file holding the swapped bytes parses to the same values', () => {
    fc.assert(
      fc.property(arbArray, (a) => {
        const size = SIZES[a.dtype];
        const bytes = encodeNpy(a);
        const start = 10 + (bytes[8] | (bytes[9] << 8));
        if (size > 1) {
          const text = Buffer.from(bytes.subarray(10, start)).toString('latin1');
          bytes.set(Buffer.from(text.replace("'<", "'>"), 'latin1'), 10);
          for (let at = start; at < bytes.length; at += size) bytes.subarray(at, at + size).reverse();
        }
        expect(bytesOf(parseNpy(bytes).data)).toEqual(bytesOf(a.data));
      }),
    );
  });

  it('writeNpy then readNpy through a file', () => {
    const dir = fs.mkdtempSync(join(os.tmpdir(), 'npy-test-'));
    try {
      const path = join(dir, 'x.npy');
      const a = { data: new Uint16Array([1, 65535, 7, 0]), shape: [2, 2] };
      writeNpy(path, a);
      expect([...fs.readFileSync(path)]).toEqual([...encodeNpy(a)]);
      expect(readNpy(path)).toEqual({ ...a, dtype: 'uint16' });
      expect(fs.readdirSync(dir)).toEqual(['x.npy']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('header parsing', () => {
  it('accepts 16-byte alignment (older NumPy), double quotes, odd spacing and a trailing-comma-free dict', () => {
    const a = parseNpy(makeNpy(`{"shape":(2,),"fortran_order":False,"descr":"<f8"}`, [0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0, 0, 0, 0, 0, 0, 0, 0x40], { align: 16 }));
    expect(a).toEqual({ data: new Float64Array([1, 2]), shape: [2], dtype: 'float64' });
    const b = parseNpy(makeNpy(dictFor('<i2', '( 1 ,\t2 , )'), [1, 0, 2, 0], { newline: false }));
    expect(b).toEqual({ data: new Int16Array([1, 2]), shape: [1, 2], dtype: 'int16' });
  });

  it('accepts any byte order mark on one-byte types', () => {
    expect(parseNpy(makeNpy(dictFor('<u1', '(2,)'), [3, 4])).data).toEqual(new Uint8Array([3, 4]));
    expect(parseNpy(makeNpy(dictFor('>i1', '(1,)'), [0xff])).data).toEqual(new Int8Array([-1]));
    expect(parseNpy(makeNpy(dictFor('|b1', '(2,)'), [0, 5])).data).toEqual(new Uint8Array([0, 1]));
  });
});

describe('malformed files are DataErrors that name the problem', () => {
  const cases: Array<[string, Uint8Array, RegExp]> = [
    ['bad magic', hex('894e554d50590100'), /bad magic/],
    ['empty file', new Uint8Array(0), /bad magic.*empty file/],
    ['unsupported version', Uint8Array.from([...FIX.f32_2x3.subarray(0, 6), 4, 0, ...FIX.f32_2x3.subarray(8)]), /unsupported \.npy format version 4\.0/],
    ['unsupported minor version', Uint8Array.from([...FIX.f32_2x3.subarray(0, 6), 1, 1, ...FIX.f32_2x3.subarray(8)]), /version 1\.1/],
    ['header cut before its length', FIX.v2_i16.subarray(0, 10), /truncated header.*before the header length/],
    ['header cut short', FIX.f32_2x3.subarray(0, 100), /truncated header: header length says 118 bytes but only 90 remain/],
    ['data cut short', FIX.f32_2x3.subarray(0, FIX.f32_2x3.length - 1), /truncated data: shape \(2, 3\) of float32 needs 24 bytes but the file has 23/],
    ['extra bytes', Uint8Array.from([...FIX.f32_2x3, 0, 0]), /2 extra bytes after the data.*needs 24 bytes but the file has 26/],
    ['fortran order', makeNpy(dictFor('<f4', '(2,)', 'True'), new Array(8).fill(0)), /Fortran-order arrays are not supported; save with np\.ascontiguousarray/],
    ['object dtype', makeNpy(dictFor('|O', '(1,)'), new Array(8).fill(0)), /object arrays \(descr "\|O"\).*pickled.*not supported.*never executed/],
    ['unknown descr', makeNpy(dictFor('<c8', '(1,)'), new Array(8).fill(0)), /unknown or unsupported descr "<c8"/],
    ['structured descr', makeNpy(`{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (1,), }`, [0, 0, 0, 0]), /descr must be a simple dtype string/],
    ["'|' on a multi-byte type", makeNpy(dictFor('|f4', '(1,)'), [0, 0, 0, 0]), /byte order '\|' but a 4-byte type/],
    ['garbage dict', makeNpy('{descr: <f4, shape: 2}'), /not a valid Python dict literal: expected a string key/],
    ['unterminated dict', makeNpy("{'descr': '<f4', 'fortran_order': False, 'shape': (2,"), /not a valid Python dict literal/],
    ['code instead of a literal', makeNpy("__import__('os').system('true')"), /not a valid Python dict literal: unexpected "_"/],
    ['a call inside the dict', makeNpy(`{'descr': '<f4', 'fortran_order': bool(0), 'shape': (), }`, [0, 0, 0, 0]), /not a valid Python dict literal: unexpected "b"/],
    ['text after the dict', makeNpy(`${dictFor('<f4', '()')} x`, [0, 0, 0, 0]), /unexpected text after the dict/],
    ['not a dict', makeNpy("('descr', '<f4')"), /expected a dict/],
    ['a float in the shape', makeNpy(dictFor('<f4', '(2.0,)')), /unsupported literal starting "2\."/],
    ['missing key', makeNpy(`{'descr': '<f4', 'shape': (1,), }`, [0, 0, 0, 0]), /exactly the keys 'descr', 'fortran_order' and 'shape', got \["descr", "shape"\]/],
    ['keys that only join to the expected ones', makeNpy(`{'descr,fortran_order': 1, 'shape': (1,), }`, [0, 0, 0, 0]), /exactly the keys/],
    ['deep nesting', makeNpy(`{'shape': ${'('.repeat(5000)}`), /nesting too deep/],
    ['extra key', makeNpy(`{'descr': '<f4', 'fortran_order': False, 'shape': (1,), 'x': 1}`, [0, 0, 0, 0]), /exactly the keys/],
    ['shape that is a parenthesised int', makeNpy(dictFor('<f4', '(3)'), new Array(12).fill(0)), /'shape' must be a tuple such as \(2, 3\), got 3/],
    ['shape that is a list', makeNpy(dictFor('<f4', '[3]'), new Array(12).fill(0)), /'shape' must be a tuple/],
    ['negative axis', makeNpy(dictFor('<f4', '(-1,)')), /'shape' must hold non-negative integers, got \(-1\)/],
    ['fortran_order not a bool', makeNpy(dictFor('<f4', '(1,)', '0'), [0, 0, 0, 0]), /'fortran_order' must be True or False, got 0/],
    ['bad UTF-8 in a 3.0 header', Uint8Array.from([...FIX.v3_f8.subarray(0, 12), 0xff, ...FIX.v3_f8.subarray(13)]), /not valid UTF-8/],
  ];
  it.each(cases)('%s', (_name, bytes, message) => {
    expect(() => parseNpy(bytes)).toThrow(DataError);
    expect(() => parseNpy(bytes)).toThrow(message);
  });

  it('readNpy adds the file name to the message', () => {
    const dir = fs.mkdtempSync(join(os.tmpdir(), 'npy-test-'));
    try {
      const path = join(dir, 'bad.npy');
      fs.writeFileSync(path, FIX.f32_2x3.subarray(0, 140));
      expect(() => readNpy(path)).toThrow(/truncated data.*bad\.npy/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('argument checks', () => {
  it('encodeNpy', () => {
    expect(() => encodeNpy({ data: new Float32Array(5), shape: [2, 3] })).toThrow(ShapeError);
    expect(() => encodeNpy({ data: new Float32Array(5), shape: [2, 3] })).toThrow(/data length must equal the product of shape \[2, 3\] \(6\), got 5/);
    expect(() => encodeNpy({ data: new Float32Array(1), shape: [1.5] })).toThrow(/shape must be an array of non-negative integers, got \[1\.5\]/);
    expect(() => encodeNpy({ data: new Uint8ClampedArray(1) as unknown as Uint8Array, shape: [1] })).toThrow(ValueError);
    expect(() => encodeNpy({ data: new BigUint64Array(1) as unknown as BigInt64Array, shape: [1] })).toThrow(/data must be a Float32Array.*got BigUint64Array/);
    expect(() => encodeNpy({ data: [1, 2] as unknown as Float32Array, shape: [2] })).toThrow(/data must be a Float32Array.*got \[1, 2\]/);
    expect(() => encodeNpy({ data: new Float32Array(1), shape: [1], dtype: 'int32' })).toThrow(/dtype "int32" needs a Int32Array, got Float32Array/);
    expect(() => encodeNpy({ data: new Float32Array(1), shape: [1], dtype: 'float16' as NpyDtype })).toThrow(/dtype must be one of/);
    expect(() => encodeNpy({ data: new Uint8Array([0, 2]), shape: [2], dtype: 'bool' })).toThrow(/bool data must hold only 0 and 1, got 2 at index 1/);
    expect(() => encodeNpy(null as unknown as NpyArray)).toThrow(/array must be an object/);
  });

  it('parseNpy, readNpy and writeNpy', () => {
    expect(() => parseNpy([1, 2] as unknown as Uint8Array)).toThrow(/bytes must be a Uint8Array, got \[1, 2\]/);
    expect(() => readNpy('')).toThrow(ValueError);
    expect(() => writeNpy(3 as unknown as string, { data: new Float32Array(1), shape: [1] })).toThrow(/path must be a non-empty string, got 3/);
  });
});

describe('ndarray interop', () => {
  it('toNdarrayLike gives C strides, offset 0 and the same data', () => {
    const a = parseNpy(FIX.f32_2x3);
    const nd = toNdarrayLike(a);
    expect(nd).toEqual({ data: a.data, shape: [2, 3], stride: [3, 1], offset: 0 });
    expect(nd.data).toBe(a.data);
    expect(toNdarrayLike(parseNpy(FIX.u8_0d))).toMatchObject({ shape: [], stride: [], offset: 0 });
    expect(() => toNdarrayLike({ data: new Float32Array(2), shape: [3], dtype: 'float32' })).toThrow(ShapeError);
  });

  it('fromNdarrayLike copies a transposed view into C order', () => {
    // data is 2x3 [[0, 1, 2], [3, 4, 5]]; the view is its 3x2 transpose.
    const t = fromNdarrayLike({ data: new Int32Array([0, 1, 2, 3, 4, 5]), shape: [3, 2], stride: [1, 3] });
    expect(t).toEqual({ data: new Int32Array([0, 3, 1, 4, 2, 5]), shape: [3, 2], dtype: 'int32' });
    const plain = fromNdarrayLike({ data: new BigInt64Array([5n, 6n]), shape: [2] });
    expect(plain).toEqual({ data: new BigInt64Array([5n, 6n]), shape: [2], dtype: 'int64' });
    const flags = fromNdarrayLike({ data: new Uint8Array([9, 1, 0]), shape: [2], offset: 1 }, 'bool');
    expect(flags).toEqual({ data: new Uint8Array([1, 0]), shape: [2], dtype: 'bool' });
    expect(() => fromNdarrayLike({ data: new Uint8Array([1, 2]), shape: [2] }, 'bool')).toThrow(/bool data must hold only 0 and 1, got 2 at index 1/);
  });

  it('fromNdarrayLike follows negative strides and offsets (axis flips) on random shapes', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 4 }), { maxLength: 4 }), fc.array(fc.boolean(), { minLength: 4, maxLength: 4 }), (shape, flip) => {
        const n = shape.reduce((a, b) => a * b, 1);
        const data = Float64Array.from({ length: n + 3 }, (_, i) => i * 10);
        const cStride = toNdarrayLike({ data: new Float64Array(n), shape, dtype: 'float64' }).stride;
        let offset = 3;
        const stride = cStride.map((s, d) => {
          if (!flip[d]) return s;
          offset += (shape[d] - 1) * s;
          return -s;
        });
        const out = fromNdarrayLike({ data, shape, stride, offset });
        for (let i = 0; i < n; i++) {
          // Decompose i into a C-order index, flip the flagged axes, and look it up directly.
          let rest = i;
          let at = 3;
          for (let d = shape.length - 1; d >= 0; d--) {
            const k = rest % shape[d];
            rest = Math.floor(rest / shape[d]);
            at += (flip[d] ? shape[d] - 1 - k : k) * cStride[d];
          }
          expect(out.data[i]).toBe(data[at]);
        }
      }),
    );
  });

  it('fromNdarrayLike rejects views that reach outside the data', () => {
    const data = new Float32Array(6);
    expect(() => fromNdarrayLike({ data, shape: [2, 3], stride: [3, 1], offset: 1 })).toThrow(/addresses elements 1\.\.6, outside data of length 6/);
    expect(() => fromNdarrayLike({ data, shape: [3], stride: [-1], offset: 1 })).toThrow(/addresses elements -1\.\.1/);
    expect(() => fromNdarrayLike({ data, shape: [2, 3], stride: [3] })).toThrow(/stride must be an array of 2 integers/);
    expect(() => fromNdarrayLike({ data, shape: [2], offset: -1 })).toThrow(/offset must be a non-negative integer, got -1/);
    expect(() => fromNdarrayLike({ data, shape: [7] })).toThrow(ShapeError);
    expect(fromNdarrayLike({ data, shape: [0, 5], stride: [100, 100], offset: 50 })).toEqual({ data: new Float32Array(0), shape: [0, 5], dtype: 'float32' });
  });
});
