/**
 * Loads a folder of PNG images laid out one sub-folder per class (dir/<class>/<image>.png)
 * into an in-memory Dataset.
 */
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PNG } from 'pngjs';
import { DataError, ValueError, describe } from '../../tensor/errors.js';
import type { Dataset } from './dataset.js';
import { meanGray } from './procedural.js';

export interface ImageFolderOptions {
  /** Resize every image to [height, width] by bilinear interpolation; without it all images must share one size. */
  size?: [number, number];
  /** 3 = RGB (default), 1 = luminance (Rec. 601 weights). */
  channels?: 1 | 3;
  /** The class sub-folders to load, in label order (default: every sub-folder, sorted by name). */
  classes?: string[];
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/**
 * Resizes an H x W x C image (row-major, channels last) to outH x outW by bilinear
 * interpolation with pixel centres at half-integers (output pixel y samples source row
 * (y + 0.5) * H / outH - 0.5), clamping at the borders. No low-pass filter is applied first,
 * so strong downscaling aliases.
 */
export function resizeBilinear(src: Float32Array, h: number, w: number, c: number, outH: number, outW: number): Float32Array {
  for (const [name, v] of [['h', h], ['w', w], ['c', c], ['outH', outH], ['outW', outW]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new ValueError(`resizeBilinear: ${name} must be a positive integer, got ${describe(v)}`);
  }
  if (!(src instanceof Float32Array) || src.length !== h * w * c) {
    throw new ValueError(`resizeBilinear: src must be a Float32Array of h*w*c = ${h * w * c} values, got ${describe(src)}${src instanceof Float32Array ? ` of ${src.length}` : ''}`);
  }
  const out = new Float32Array(outH * outW * c);
  // Per output column: the two source columns and the weight of the second.
  const x0s = new Int32Array(outW);
  const x1s = new Int32Array(outW);
  const txs = new Float64Array(outW);
  for (let x = 0; x < outW; x++) {
    const sx = Math.min(Math.max(((x + 0.5) * w) / outW - 0.5, 0), w - 1);
    x0s[x] = Math.floor(sx);
    x1s[x] = Math.min(x0s[x] + 1, w - 1);
    txs[x] = sx - x0s[x];
  }
  for (let y = 0; y < outH; y++) {
    const sy = Math.min(Math.max(((y + 0.5) * h) / outH - 0.5, 0), h - 1);
    const y0 = Math.floor(sy);
    const y1 = Math.min(y0 + 1, h - 1);
    const ty = sy - y0;
    for (let x = 0; x < outW; x++) {
      const tx = txs[x];
      const a = (y0 * w + x0s[x]) * c;
      const b = (y0 * w + x1s[x]) * c;
      const d = (y1 * w + x0s[x]) * c;
      const e = (y1 * w + x1s[x]) * c;
      for (let ch = 0; ch < c; ch++) {
        const top = src[a + ch] + tx * (src[b + ch] - src[a + ch]);
        const bottom = src[d + ch] + tx * (src[e + ch] - src[d + ch]);
        out[(y * outW + x) * c + ch] = top + ty * (bottom - top);
      }
    }
  }
  return out;
}

/** Reads one PNG as float32 H x W x channels in [0, 1], alpha composited over mean gray. */
function readPng(file: string, channels: 1 | 3): { data: Float32Array; h: number; w: number } {
  let bytes: Buffer;
  try {
    bytes = readFileSync(file);
  } catch (err) {
    throw new DataError(`loadImageFolder: cannot read ${file}: ${(err as Error).message}`);
  }
  if (bytes.length < 8 || PNG_SIGNATURE.some((v, i) => bytes[i] !== v)) {
    throw new DataError(`loadImageFolder: ${file} is not a PNG file (it lacks the PNG signature)`);
  }
  let png: PNG;
  try {
    // pngjs hands back 8-bit RGBA whatever the stored colour type and bit depth.
    png = PNG.sync.read(bytes);
  } catch (err) {
    throw new DataError(`loadImageFolder: ${file} is a corrupt PNG: ${(err as Error).message}`);
  }
  const { width: w, height: h, data: rgba } = png;
  const gray = meanGray(3)[0];
  const data = new Float32Array(h * w * channels);
  for (let p = 0; p < h * w; p++) {
    const a = rgba[4 * p + 3] / 255;
    const r = (a * rgba[4 * p]) / 255 + (1 - a) * gray;
    const g = (a * rgba[4 * p + 1]) / 255 + (1 - a) * gray;
    const b = (a * rgba[4 * p + 2]) / 255 + (1 - a) * gray;
    if (channels === 3) {
      data[3 * p] = r;
      data[3 * p + 1] = g;
      data[3 * p + 2] = b;
    } else {
      data[p] = 0.299 * r + 0.587 * g + 0.114 * b;
    }
  }
  return { data, h, w };
}

function isDirectory(path: string): boolean {
  try {
    return statSync(path).isDirectory();
  } catch {
    return false;
  }
}

function checkOptions(options: unknown): { size?: [number, number]; channels: 1 | 3; classes?: string[] } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValueError(`loadImageFolder: options must be an object { size?, channels?, classes? }, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'size' && k !== 'channels' && k !== 'classes') {
      throw new ValueError(`loadImageFolder: unknown option ${describe(k)}; expected size, channels or classes`);
    }
  }
  const { size, channels = 3, classes } = o;
  if (
    size !== undefined &&
    !(Array.isArray(size) && size.length === 2 && size.every((s) => Number.isInteger(s) && s >= 1 && s <= 65536))
  ) {
    throw new ValueError(`loadImageFolder: options.size must be [height, width] of positive integers, got ${describe(size)}`);
  }
  if (channels !== 1 && channels !== 3) throw new ValueError(`loadImageFolder: options.channels must be 1 or 3, got ${describe(channels)}`);
  if (classes !== undefined) {
    if (!Array.isArray(classes) || classes.length === 0 || !classes.every((s) => typeof s === 'string' && s.length > 0)) {
      throw new ValueError(`loadImageFolder: options.classes must be a non-empty array of folder names, got ${describe(classes)}`);
    }
    if (new Set(classes).size !== classes.length) {
      throw new ValueError(`loadImageFolder: options.classes must not repeat a name, got ${describe(classes)}`);
    }
  }
  return { size: size as [number, number] | undefined, channels, classes: classes as string[] | undefined };
}

/**
 * Loads dir/<class>/<file> PNGs as a Dataset: label = index of the class in classNames (the
 * sub-folders sorted by name unless options.classes says otherwise), files in name order within
 * a class, pixels float32 in [0, 1]. Names starting with '.' are skipped, as are folders inside
 * class folders; every other file must be a PNG.
 */
export function loadImageFolder(dir: string, options: ImageFolderOptions = {}): Dataset {
  if (typeof dir !== 'string' || dir.length === 0) {
    throw new ValueError(`loadImageFolder: dir must be a non-empty path string, got ${describe(dir)}`);
  }
  const { size, channels, classes } = checkOptions(options);
  let stat;
  try {
    stat = statSync(dir);
  } catch {
    throw new DataError(`loadImageFolder: folder ${dir} does not exist`);
  }
  if (!stat.isDirectory()) throw new DataError(`loadImageFolder: ${dir} is not a folder`);

  // Plain code-unit order, so labels do not depend on the locale.
  const folders = readdirSync(dir)
    .filter((name) => !name.startsWith('.') && isDirectory(join(dir, name)))
    .sort();
  if (folders.length === 0) throw new DataError(`loadImageFolder: ${dir} holds no class sub-folders (expected ${dir}/<class>/<image>.png)`);
  if (classes) {
    const missing = classes.filter((c) => !folders.includes(c));
    if (missing.length > 0) {
      throw new DataError(`loadImageFolder: options.classes names ${describe(missing)}, which ${dir} lacks; its sub-folders are ${describe(folders)}`);
    }
  }
  const classNames = classes ?? folders;

  const files: { path: string; label: number }[] = [];
  classNames.forEach((name, label) => {
    const folder = join(dir, name);
    const names = readdirSync(folder)
      .filter((f) => !f.startsWith('.') && !isDirectory(join(folder, f)))
      .sort();
    if (names.length === 0) throw new DataError(`loadImageFolder: class folder ${folder} holds no images`);
    for (const f of names) files.push({ path: join(folder, f), label });
  });

  const n = files.length;
  let h = size?.[0] ?? 0;
  let w = size?.[1] ?? 0;
  let images = size ? new Float32Array(n * h * w * channels) : new Float32Array(0);
  const labels = new Int32Array(n);
  files.forEach((file, i) => {
    const img = readPng(file.path, channels);
    let data = img.data;
    if (size) {
      if (img.h !== h || img.w !== w) data = resizeBilinear(data, img.h, img.w, channels, h, w);
    } else if (i === 0) {
      h = img.h;
      w = img.w;
      images = new Float32Array(n * h * w * channels);
    } else if (img.h !== h || img.w !== w) {
      throw new DataError(
        `loadImageFolder: ${file.path} is ${img.h}x${img.w} (height x width) but ${files[0].path} is ${h}x${w}; pass options.size to resize all images`,
      );
    }
    images.set(data, i * h * w * channels);
    labels[i] = file.label;
  });
  return { images, labels, shape: [n, h, w, channels], classNames: classNames.slice() };
}
