import { afterAll, describe, expect, it } from 'vitest';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PNG, type ColorType } from 'pngjs';
import { loadImageFolder, resizeBilinear } from '../../../src/nn/data/imagefolder.js';
import { DataError, ValueError } from '../../../src/tensor/errors.js';

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});

function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'imagefolder-'));
  roots.push(d);
  return d;
}

/** Encodes RGBA pixels (row-major, 4 bytes each) as a PNG of the given colour type. */
function pngBytes(width: number, height: number, rgba: number[], colorType: ColorType = 6): Buffer {
  const png = new PNG({ width, height });
  png.data = Buffer.from(rgba);
  return PNG.sync.write(png, { colorType });
}

function writePng(path: string, width: number, height: number, rgba: number[], colorType: ColorType = 6): void {
  writeFileSync(path, pngBytes(width, height, rgba, colorType));
}

/** Opaque gray pixels with the given 8-bit levels. */
const grayPixels = (levels: number[]) => levels.flatMap((v) => [v, v, v, 255]);

/**
 * Two classes, created out of order so that sorting matters:
 * cat/x.png  2x3 grayscale PNG
 * ant/b.png  2x3 RGB PNG
 * ant/a.png  2x3 RGBA PNG with transparent and half-transparent pixels
 * plus a hidden file and a nested folder, both ignored.
 */
function twoClasses(): string {
  const dir = tempDir();
  mkdirSync(join(dir, 'cat'));
  mkdirSync(join(dir, 'ant'));
  writePng(join(dir, 'cat', 'x.png'), 3, 2, grayPixels([0, 51, 102, 153, 204, 255]), 0);
  writePng(join(dir, 'ant', 'b.png'), 3, 2, [255, 0, 0, 255, 0, 255, 0, 255, 0, 0, 255, 255, 10, 20, 30, 255, 40, 50, 60, 255, 70, 80, 90, 255], 2);
  writePng(
    join(dir, 'ant', 'a.png'),
    3,
    2,
    [255, 255, 255, 255, 9, 9, 9, 0, 255, 0, 102, 51, 0, 0, 0, 255, 255, 255, 255, 102, 51, 102, 153, 255],
    6,
  );
  writeFileSync(join(dir, 'ant', '.DS_Store'), 'not an image');
  mkdirSync(join(dir, 'ant', 'nested'));
  return dir;
}

const f32 = (values: number[]) => values.map(Math.fround);

describe('loadImageFolder', () => {
  it('labels sub-folders in sorted order and reads pixels, compositing alpha over mean gray', () => {
    const d = loadImageFolder(twoClasses());
    expect(d.classNames).toEqual(['ant', 'cat']);
    expect(d.shape).toEqual([3, 2, 3, 3]);
    expect(Array.from(d.labels)).toEqual([0, 0, 1]);
    // ant/a.png: opaque white; fully transparent -> 0.5; alpha 0.2 over gray: 0.2 * v + 0.4;
    // opaque black; alpha 0.4 white: 0.4 + 0.3; opaque (51, 102, 153).
    const a = Array.from(d.images.subarray(0, 18));
    const expectedA = [1, 1, 1, 0.5, 0.5, 0.5, 0.6, 0.4, 0.48, 0, 0, 0, 0.7, 0.7, 0.7, 0.2, 0.4, 0.6];
    a.forEach((v, i) => expect(v).toBeCloseTo(expectedA[i], 7));
    expect(Array.from(d.images.subarray(18, 36))).toEqual(
      f32([1, 0, 0, 0, 1, 0, 0, 0, 1, 10 / 255, 20 / 255, 30 / 255, 40 / 255, 50 / 255, 60 / 255, 70 / 255, 80 / 255, 90 / 255]),
    );
    expect(Array.from(d.images.subarray(36))).toEqual(f32([0, 0, 0, 0.2, 0.2, 0.2, 0.4, 0.4, 0.4, 0.6, 0.6, 0.6, 0.8, 0.8, 0.8, 1, 1, 1]));
  });

  it('gives luminance for one channel and honours options.classes', () => {
    const dir = twoClasses();
    const g = loadImageFolder(dir, { channels: 1 });
    expect(g.shape).toEqual([3, 2, 3, 1]);
    const b = [0.299, 0.587, 0.114, 0.299 * 10 / 255 + 0.587 * 20 / 255 + 0.114 * 30 / 255];
    b.forEach((v, i) => expect(g.images[6 + i]).toBeCloseTo(v, 6));
    const only = loadImageFolder(dir, { classes: ['cat'] });
    expect(only.classNames).toEqual(['cat']);
    expect(Array.from(only.labels)).toEqual([0]);
    const reordered = loadImageFolder(dir, { classes: ['cat', 'ant'] });
    expect(Array.from(reordered.labels)).toEqual([0, 1, 1]);
    expect(() => loadImageFolder(dir, { classes: ['cat', 'dog'] })).toThrow(/names \["dog"\], which .* lacks/);
  });

  it('resizes bilinearly to options.size', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'only'));
    // 2x2 levels a b / c d; pixel centres of a 3x3 output fall on source rows/columns 0, 0.5, 1.
    writePng(join(dir, 'only', 'p.png'), 2, 2, grayPixels([0, 51, 153, 255]), 0);
    const d = loadImageFolder(dir, { size: [3, 3], channels: 1 });
    const [a, b, c, e] = [0, 0.2, 0.6, 1];
    const expected = [a, (a + b) / 2, b, (a + c) / 2, (a + b + c + e) / 4, (b + e) / 2, c, (c + e) / 2, e];
    expect(d.shape).toEqual([1, 3, 3, 1]);
    Array.from(d.images).forEach((v, i) => expect(v).toBeCloseTo(expected[i], 6));
  });

  it('requires one size unless resizing, naming the first offending file', () => {
    const dir = tempDir();
    mkdirSync(join(dir, 'k'));
    writePng(join(dir, 'k', '1.png'), 3, 2, grayPixels([1, 2, 3, 4, 5, 6]));
    writePng(join(dir, 'k', '2.png'), 2, 2, grayPixels([1, 2, 3, 4]));
    writePng(join(dir, 'k', '3.png'), 2, 1, grayPixels([1, 2]));
    expect(() => loadImageFolder(dir)).toThrow(DataError);
    expect(() => loadImageFolder(dir)).toThrow(`${join(dir, 'k', '2.png')} is 2x2 (height x width) but ${join(dir, 'k', '1.png')} is 2x3`);
    expect(loadImageFolder(dir, { size: [4, 4] }).shape).toEqual([3, 4, 4, 3]);
  });

  it('rejects corrupt and non-PNG files by name', () => {
    const good = pngBytes(2, 2, grayPixels([1, 2, 3, 4]));
    const cases: [string, Buffer, RegExp][] = [
      ['notes.txt', Buffer.from('hello'), /notes.txt is not a PNG file/],
      ['truncated.png', good.subarray(0, good.length - 20), /truncated.png is a corrupt PNG/],
      ['garbage.png', Buffer.concat([good.subarray(0, 8), Buffer.from('garbage after the signature')]), /garbage.png is a corrupt PNG/],
    ];
    for (const [name, content, message] of cases) {
      const dir = tempDir();
      mkdirSync(join(dir, 'c'));
      writeFileSync(join(dir, 'c', 'a.png'), good);
      writeFileSync(join(dir, 'c', name), content);
      expect(() => loadImageFolder(dir)).toThrow(DataError);
      expect(() => loadImageFolder(dir)).toThrow(message);
    }
  });

  it('reports missing and empty folders and bad options', () => {
    const dir = tempDir();
    expect(() => loadImageFolder(join(dir, 'nope'))).toThrow(new DataError(`loadImageFolder: folder ${join(dir, 'nope')} does not exist`));
    expect(() => loadImageFolder(dir)).toThrow(/holds no class sub-folders/);
    writeFileSync(join(dir, 'file.png'), pngBytes(1, 1, [0, 0, 0, 255]));
    expect(() => loadImageFolder(join(dir, 'file.png'))).toThrow(/is not a folder/);
    mkdirSync(join(dir, 'empty'));
    expect(() => loadImageFolder(dir)).toThrow(`class folder ${join(dir, 'empty')} holds no images`);
    expect(() => loadImageFolder(dir, { channels: 2 as never })).toThrow(ValueError);
    expect(() => loadImageFolder(dir, { size: [0, 3] })).toThrow(/options.size must be \[height, width\] of positive integers, got \[0, 3\]/);
    expect(() => loadImageFolder(dir, { classes: ['a', 'a'] })).toThrow(/must not repeat/);
    expect(() => loadImageFolder(dir, { scale: 2 } as never)).toThrow(/unknown option "scale"/);
    expect(() => loadImageFolder('' as string)).toThrow(ValueError);
  });
});

describe('resizeBilinear', () => {
  it('matches a hand computation on a 1x4 row', () => {
    // Output x samples source column (x + 0.5) * 4/3 - 0.5 = 1/6, 3/2, 17/6.
    const out = resizeBilinear(Float32Array.of(0, 10, 20, 40), 1, 4, 1, 1, 3);
    expect(out[0]).toBeCloseTo(10 / 6, 5);
    expect(out[1]).toBeCloseTo(15, 5);
    expect(out[2]).toBeCloseTo(20 + (20 * 5) / 6, 5);
  });

  it('keeps an image of the same size and interleaved channels apart', () => {
    const src = Float32Array.from({ length: 2 * 3 * 2 }, (_, i) => i * 0.25);
    expect(Array.from(resizeBilinear(src, 2, 3, 2, 2, 3))).toEqual(Array.from(src));
    // Doubling a 1x1 two-channel image copies its channels everywhere.
    expect(Array.from(resizeBilinear(Float32Array.of(0.1, 0.9), 1, 1, 2, 2, 2))).toEqual(f32([0.1, 0.9, 0.1, 0.9, 0.1, 0.9, 0.1, 0.9]));
    expect(() => resizeBilinear(new Float32Array(3), 2, 2, 1, 1, 1)).toThrow(/src must be a Float32Array of h\*w\*c = 4 values/);
    expect(() => resizeBilinear(new Float32Array(4), 2, 2, 1, 0, 1)).toThrow(/outH must be a positive integer, got 0/);
  });
});
