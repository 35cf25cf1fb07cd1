/**
 * A built-in image dataset generated from a seed: geometric object categories drawn at a
 * controlled amount of identity-preserving variation (position, scale, rotation) over
 * cluttered or plain backgrounds, after the low/medium/high variation design of the
 * stimuli of Majaj et al. (2015). Nothing is downloaded; example j depends only on
 * (seed, j, options).
 */
import { ValueError, describe } from '../../tensor/errors.js';
import { Key, foldIn, key as seedKey, permutation, split, uniformFloats } from '../../tensor/random.js';
import type { Dataset } from './dataset.js';

/** The object categories, in label order; `classes: n` uses the first n. */
export const SHAPE_NAMES = [
  'disk',
  'square',
  'triangle',
  'cross',
  'star',
  'ring',
  'bars',
  'arrow',
  'crescent',
  'tee',
  'lshape',
  'rhombus',
] as const;
export type ShapeName = (typeof SHAPE_NAMES)[number];

export type Variation = 'low' | 'medium' | 'high';

/**
 * Identity-preserving variation per level. Each is drawn uniformly and independently per example:
 * - shift: the object centroid moves by up to ±shift * size along x and along y from the centre;
 * - scale: the object's radius (largest distance from centroid to edge) is OBJECT_RADIUS * size * scale;
 * - rotation: the object turns by up to ±rotation degrees (180 = any orientation).
 * low: centred, fixed size, upright. medium: ±15 %, 0.7–1.1, ±45°. high: ±30 %, 0.5–1.2, any.
 * At 'high' an object near a corner can be partly cut off by the image border.
 */
export const VARIATION_RANGES: Readonly<Record<Variation, { readonly shift: number; readonly scale: readonly [number, number]; readonly rotation: number }>> = {
  low: { shift: 0, scale: [1, 1], rotation: 0 },
  medium: { shift: 0.15, scale: [0.7, 1.1], rotation: 45 },
  high: { shift: 0.3, scale: [0.5, 1.2], rotation: 180 },
};

/** Object radius at scale 1, as a fraction of the image size (a 32-pixel image gets an 8-pixel radius). */
export const OBJECT_RADIUS = 0.25;

/** The object's luminance differs from the mean luminance of the background it covers by at least this. */
export const MIN_CONTRAST = 0.3;

/** Rec. 601 luma weights, used for luminance and for the 1-channel images. */
const LUMA = [0.299, 0.587, 0.114] as const;

// ---------------------------------------------------------------------------------------------
// Shapes: inside/outside tests in a shape frame with v pointing up, each shape spanning about
// [-1, 1]. The renderer recentres each on its area centroid and rescales it to unit radius, so
// position and scale mean the same for every category.

const STAR_X = new Float64Array(10);
const STAR_Y = new Float64Array(10);
for (let k = 0; k < 10; k++) {
  const a = Math.PI / 2 + (k * Math.PI) / 5;
  const r = k % 2 === 0 ? 1 : 0.45;
  STAR_X[k] = r * Math.cos(a);
  STAR_Y[k] = r * Math.sin(a);
}

/** Even–odd rule point-in-polygon test (the star is concave). */
function inPolygon(xs: Float64Array, ys: Float64Array, u: number, v: number): boolean {
  let inside = false;
  for (let i = 0, j = xs.length - 1; i < xs.length; j = i++) {
    if (ys[i] > v !== ys[j] > v && u < ((xs[j] - xs[i]) * (v - ys[i])) / (ys[j] - ys[i]) + xs[i]) inside = !inside;
  }
  return inside;
}

const SQRT3 = Math.sqrt(3);

const INSIDE: ReadonlyArray<(u: number, v: number) => boolean> = [
  // disk
  (u, v) => u * u + v * v <= 1,
  // square
  (u, v) => Math.abs(u) <= 0.75 && Math.abs(v) <= 0.75,
  // triangle: equilateral, circumradius 1, apex up
  (u, v) => v >= -0.5 && v <= 1 - SQRT3 * u && v <= 1 + SQRT3 * u,
  // cross: a plus sign of two 0.6-wide arms
  (u, v) => (Math.abs(u) <= 0.3 && Math.abs(v) <= 1) || (Math.abs(v) <= 0.3 && Math.abs(u) <= 1),
  // star: five points
  (u, v) => inPolygon(STAR_X, STAR_Y, u, v),
  // ring: an outlined disk
  (u, v) => {
    const r2 = u * u + v * v;
    return r2 <= 1 && r2 >= 0.55 * 0.55;
  },
  // bars: two parallel horizontal bars
  (u, v) => Math.abs(u) <= 1 && Math.abs(v) >= 0.25 && Math.abs(v) <= 0.65,
  // arrow: shaft and triangular head, pointing right
  (u, v) => (u >= -1 && u <= 0.15 && Math.abs(v) <= 0.22) || (u >= 0.15 && u <= 1 && Math.abs(v) <= (0.7 * (1 - u)) / 0.85),
  // crescent: a disk minus an offset disk
  (u, v) => u * u + v * v <= 1 && (u - 0.45) * (u - 0.45) + v * v >= 0.8 * 0.8,
  // tee
  (u, v) => (Math.abs(u) <= 1 && v >= 0.4 && v <= 1) || (Math.abs(u) <= 0.3 && v >= -1 && v <= 0.4),
  // lshape
  (u, v) => (u >= -0.8 && u <= -0.2 && v >= -1 && v <= 1) || (u >= -0.8 && u <= 0.8 && v >= -1 && v <= -0.4),
  // rhombus: elongated, so that no rotation of it is a square
  (u, v) => Math.abs(u) + Math.abs(v) / 0.45 <= 1,
];

interface Geometry {
  /** Area centroid in the shape frame. */
  cu: number;
  cv: number;
  /** Largest distance from the centroid to a point of the shape (upper bound). */
  rmax: number;
}

const geometryCache: (Geometry | undefined)[] = [];

/** Centroid and radius of a shape, measured once on a fine grid over [-1.5, 1.5]^2. */
function geometry(kind: number): Geometry {
  const cached = geometryCache[kind];
  if (cached) return cached;
  const inside = INSIDE[kind];
  const n = 600;
  const step = 3 / n;
  let count = 0;
  let su = 0;
  let sv = 0;
  for (let j = 0; j < n; j++) {
    const v = -1.5 + (j + 0.5) * step;
    for (let i = 0; i < n; i++) {
      const u = -1.5 + (i + 0.5) * step;
      if (inside(u, v)) {
        count++;
        su += u;
        sv += v;
      }
    }
  }
  const cu = su / count;
  const cv = sv / count;
  let r2 = 0;
  for (let j = 0; j < n; j++) {
    const v = -1.5 + (j + 0.5) * step;
    for (let i = 0; i < n; i++) {
      const u = -1.5 + (i + 0.5) * step;
      if (inside(u, v)) r2 = Math.max(r2, (u - cu) ** 2 + (v - cv) ** 2);
    }
  }
  // The farthest point (a vertex or an arc) lies within half a grid step or so of the farthest
  // sample inside; the renderer's bounding box keeps a pixel of margin beyond this estimate.
  const g = { cu, cv, rmax: Math.sqrt(r2) + step / 2 };
  geometryCache[kind] = g;
  return g;
}

/**
 * Writes into `cov` (size*size, fully overwritten) the fraction of each pixel covered by shape
 * `kind` with centroid at pixel coordinates (cx, cy), radius r pixels and rotation theta radians:
 * 4x4 supersampling, each sample mapped back into the shape frame by the inverse transform.
 */
function renderCoverage(kind: number, size: number, cx: number, cy: number, r: number, theta: number, cov: Float32Array): void {
  cov.fill(0);
  const inside = INSIDE[kind];
  const g = geometry(kind);
  const k = g.rmax / r;
  const c = Math.cos(theta) * k;
  const s = Math.sin(theta) * k;
  const x0 = Math.max(0, Math.floor(cx - r - 1));
  const x1 = Math.min(size, Math.ceil(cx + r + 1));
  const y0 = Math.max(0, Math.floor(cy - r - 1));
  const y1 = Math.min(size, Math.ceil(cy + r + 1));
  const reach2 = (r + 0.75) ** 2; // a pixel whose centre is farther than this holds no part of the shape
  for (let py = y0; py < y1; py++) {
    for (let px = x0; px < x1; px++) {
      const dx = px + 0.5 - cx;
      const dy = py + 0.5 - cy;
      if (dx * dx + dy * dy > reach2) continue;
      let hits = 0;
      for (let j = 0; j < 4; j++) {
        const sy = py + (j + 0.5) / 4 - cy;
        for (let i = 0; i < 4; i++) {
          const sx = px + (i + 0.5) / 4 - cx;
          // Image y points down, shape v points up: the map is a rotation composed with a flip.
          if (inside(g.cu + c * sx + s * sy, g.cv + s * sx - c * sy)) hits++;
        }
      }
      cov[py * size + px] = hits / 16;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Backgrounds.

/** Low-frequency noise octaves: cells across the image and amplitude per channel. */
const OCTAVES = [
  { cells: 3, amplitude: 0.2 },
  { cells: 6, amplitude: 0.1 },
] as const;
const MAX_DISTRACTORS = 4;
const DISTRACTOR_FLOATS = 9;
const CLUTTER_FLOATS =
  3 + OCTAVES.reduce((n, o) => n + 3 * (o.cells + 1) ** 2, 0) + 1 + MAX_DISTRACTORS * DISTRACTOR_FLOATS;

/** Per-axis interpolation tables of one octave for one image size: cell index and smoothstep weight. */
interface OctaveTable {
  cells: number;
  amplitude: number;
  index: Int32Array;
  weight: Float64Array;
}

function octaveTables(size: number): OctaveTable[] {
  return OCTAVES.map(({ cells, amplitude }) => {
    const index = new Int32Array(size);
    const weight = new Float64Array(size);
    for (let p = 0; p < size; p++) {
      const f = ((p + 0.5) / size) * cells;
      const i = Math.min(Math.floor(f), cells - 1);
      const t = f - i;
      index[p] = i;
      weight[p] = t * t * (3 - 2 * t);
    }
    return { cells, amplitude, index, weight };
  });
}

/** Blends colour (r, g, b) into pixel p of `rgb` with opacity a. */
function blend(rgb: Float32Array, p: number, a: number, r: number, g: number, b: number): void {
  rgb[3 * p] += a * (r - rgb[3 * p]);
  rgb[3 * p + 1] += a * (g - rgb[3 * p + 1]);
  rgb[3 * p + 2] += a * (b - rgb[3 * p + 2]);
}

/**
 * Clutter: a random base colour plus smooth value noise (two octaves, smoothstep-interpolated
 * random grids per channel), then 2–4 distractors of random colour: soft Gaussian blobs and thin
 * line segments, neither of which has the crisp outline of any category shape.
 */
function drawClutter(u: Float64Array, size: number, tables: OctaveTable[], rgb: Float32Array): void {
  let at = 3;
  const grids = tables.map((t) => {
    const n = 3 * (t.cells + 1) ** 2;
    const grid = new Float64Array(n);
    for (let i = 0; i < n; i++) grid[i] = (2 * u[at + i] - 1) * t.amplitude;
    at += n;
    return grid;
  });
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const p = y * size + x;
      for (let ch = 0; ch < 3; ch++) {
        let value = 0.25 + 0.5 * u[ch];
        for (let o = 0; o < tables.length; o++) {
          const t = tables[o];
          const g = grids[o];
          const stride = t.cells + 1;
          const i = t.index[x];
          const j = t.index[y];
          const wx = t.weight[x];
          const wy = t.weight[y];
          const n00 = g[3 * (j * stride + i) + ch];
          const n01 = g[3 * (j * stride + i + 1) + ch];
          const n10 = g[3 * ((j + 1) * stride + i) + ch];
          const n11 = g[3 * ((j + 1) * stride + i + 1) + ch];
          value += (1 - wy) * ((1 - wx) * n00 + wx * n01) + wy * ((1 - wx) * n10 + wx * n11);
        }
        rgb[3 * p + ch] = value < 0 ? 0 : value > 1 ? 1 : value;
      }
    }
  }
  const count = 2 + Math.floor(u[at++] * (MAX_DISTRACTORS - 1));
  for (let d = 0; d < count; d++, at += DISTRACTOR_FLOATS) {
    const x = u[at + 1] * size;
    const y = u[at + 2] * size;
    const angle = u[at + 4] * Math.PI;
    const ca = Math.cos(angle);
    const sa = Math.sin(angle);
    const [r, g, b] = [u[at + 6], u[at + 7], u[at + 8]];
    if (u[at] < 0.5) {
      // Soft blob: opacity 0.9 * exp(-q/2) for the elliptical distance q.
      const sMajor = (0.04 + 0.05 * u[at + 3]) * size;
      const sMinor = sMajor / (1 + 1.5 * u[at + 5]);
      const reach = 3 * sMajor;
      for (let py = Math.max(0, Math.floor(y - reach)); py < Math.min(size, Math.ceil(y + reach)); py++) {
        for (let px = Math.max(0, Math.floor(x - reach)); px < Math.min(size, Math.ceil(x + reach)); px++) {
          const dx = px + 0.5 - x;
          const dy = py + 0.5 - y;
          const a = (ca * dx + sa * dy) / sMajor;
          const c = (-sa * dx + ca * dy) / sMinor;
          blend(rgb, py * size + px, 0.9 * Math.exp(-0.5 * (a * a + c * c)), r, g, b);
        }
      }
    } else {
      // Line segment, anti-aliased by distance: opacity clamp(halfWidth + 0.5 - distance, 0, 1).
      const half = (0.15 + 0.2 * u[at + 3]) * size;
      const halfWidth = Math.max(0.5, (0.015 + 0.015 * u[at + 5]) * size);
      const reach = half + halfWidth + 1;
      for (let py = Math.max(0, Math.floor(y - reach)); py < Math.min(size, Math.ceil(y + reach)); py++) {
        for (let px = Math.max(0, Math.floor(x - reach)); px < Math.min(size, Math.ceil(x + reach)); px++) {
          const dx = px + 0.5 - x;
          const dy = py + 0.5 - y;
          const along = Math.max(-half, Math.min(half, ca * dx + sa * dy));
          const ex = dx - along * ca;
          const ey = dy - along * sa;
          const a = halfWidth + 0.5 - Math.sqrt(ex * ex + ey * ey);
          if (a > 0) blend(rgb, py * size + px, a > 1 ? 1 : a, r, g, b);
        }
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Examples.

export interface ProceduralOptions {
  seed: number;
  /** Image height and width in pixels (default 32). */
  size?: number;
  variation?: Variation;
  /** Number of categories, 2..SHAPE_NAMES.length (default 8). */
  classes?: number;
  channels?: 1 | 3;
  background?: 'gray' | 'clutter';
}

/** What was drawn in one example. */
export interface ProceduralParams {
  label: number;
  shape: ShapeName;
  /** Object centroid, in pixel coordinates ((0, 0) is the top-left corner of the image). */
  x: number;
  y: number;
  /** Object radius is OBJECT_RADIUS * size * scale pixels. */
  scale: number;
  /** Degrees, clockwise on screen from the upright shape. */
  rotation: number;
  /** Object colour (RGB in [0, 1]; for 1-channel images the pixel value is its luminance). */
  colour: [number, number, number];
  luminance: number;
  /** Mean luminance of the background under the object, before the object was drawn. */
  backgroundLuminance: number;
}

type Resolved = Required<ProceduralOptions>;

const OPTION_NAMES = ['seed', 'count', 'size', 'variation', 'classes', 'channels', 'background'];

function resolveOptions(fn: string, options: unknown, withCount: boolean): Resolved & { count: number } {
  if (typeof options !== 'object' || options === null || Array.isArray(options)) {
    throw new ValueError(`${fn}: options must be an object { seed, ... }, got ${describe(options)}`);
  }
  const o = options as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (!OPTION_NAMES.includes(k) || (k === 'count' && !withCount)) {
      throw new ValueError(`${fn}: unknown option ${describe(k)}; expected one of ${OPTION_NAMES.filter((n) => withCount || n !== 'count').join(', ')}`);
    }
  }
  const { seed, count = 1, size = 32, variation = 'medium', classes = 8, channels = 3, background = 'clutter' } = o;
  const isInt = (v: unknown): v is number => typeof v === 'number' && Number.isInteger(v);
  if (!isInt(seed) || seed < 0 || seed > Number.MAX_SAFE_INTEGER) {
    throw new ValueError(`${fn}: options.seed must be an integer in [0, 2^53), got ${describe(seed)}`);
  }
  if (withCount && (!isInt(count) || count < 1 || count > 0xffffffff)) {
    throw new ValueError(`${fn}: options.count must be a positive integer below 2^32, got ${describe(count)}`);
  }
  if (!isInt(size) || size < 8 || size > 1024) {
    throw new ValueError(`${fn}: options.size must be an integer in [8, 1024], got ${describe(size)}`);
  }
  if (variation !== 'low' && variation !== 'medium' && variation !== 'high') {
    throw new ValueError(`${fn}: options.variation must be 'low', 'medium' or 'high', got ${describe(variation)}`);
  }
  if (!isInt(classes) || classes < 2 || classes > SHAPE_NAMES.length) {
    throw new ValueError(`${fn}: options.classes must be an integer in [2, ${SHAPE_NAMES.length}], got ${describe(classes)}`);
  }
  if (channels !== 1 && channels !== 3) throw new ValueError(`${fn}: options.channels must be 1 or 3, got ${describe(channels)}`);
  if (background !== 'gray' && background !== 'clutter') {
    throw new ValueError(`${fn}: options.background must be 'gray' or 'clutter', got ${describe(background)}`);
  }
  return { seed, count: count as number, size, variation, classes, channels, background };
}

/** Renders examples of one option set; scratch buffers and tables are shared between calls. */
function makeRenderer(o: Resolved) {
  const { size, classes, channels, background } = o;
  const ranges = VARIATION_RANGES[o.variation];
  const root = seedKey(o.seed);
  // Labels come in blocks of `classes` examples, each block a keyed permutation of all classes:
  // any prefix is balanced to within one example per class.
  const labelRoot = split(root, 1)[0];
  let block = -1;
  let blockPerm: Int32Array = new Int32Array(0);
  const tables = octaveTables(size);
  const rgb = new Float32Array(size * size * 3);
  const cov = new Float32Array(size * size);

  return function render(j: number, out: Float32Array, offset: number): ProceduralParams {
    if (Math.floor(j / classes) !== block) {
      block = Math.floor(j / classes);
      blockPerm = permutation(foldIn(labelRoot, block), classes);
    }
    const label = blockPerm[j % classes];
    const kj: Key = foldIn(root, j);
    const u = uniformFloats(foldIn(kj, 0), 9);

    if (background === 'gray') rgb.fill(0.5);
    else drawClutter(uniformFloats(foldIn(kj, 1), CLUTTER_FLOATS), size, tables, rgb);

    const x = size / 2 + (2 * u[0] - 1) * ranges.shift * size;
    const y = size / 2 + (2 * u[1] - 1) * ranges.shift * size;
    const scale = ranges.scale[0] + u[2] * (ranges.scale[1] - ranges.scale[0]);
    const rotation = (2 * u[3] - 1) * ranges.rotation;
    renderCoverage(label, size, x, y, OBJECT_RADIUS * size * scale, (rotation * Math.PI) / 180, cov);

    // Mean luminance of the background the object will cover, weighted by coverage.
    let wsum = 0;
    let lsum = 0;
    for (let p = 0; p < size * size; p++) {
      const a = cov[p];
      if (a > 0) {
        wsum += a;
        lsum += a * (LUMA[0] * rgb[3 * p] + LUMA[1] * rgb[3 * p + 1] + LUMA[2] * rgb[3 * p + 2]);
      }
    }
    const lb = wsum > 0 ? lsum / wsum : 0.5;
    // Object luminance: uniform over [0, lb - C] ∪ [lb + C, 1], which is never shorter than 1 - 2C.
    const below = Math.max(0, lb - MIN_CONTRAST);
    const above = Math.max(0, 1 - lb - MIN_CONTRAST);
    const t = u[4] * (below + above);
    const lum = t < below ? t : lb + MIN_CONTRAST + (t - below);
    // Colour: that luminance plus a random chroma direction of zero luminance, scaled by a random
    // fraction of the largest step that keeps every channel in [0, 1].
    const d = [2 * u[5] - 1, 2 * u[6] - 1, 2 * u[7] - 1];
    const dl = LUMA[0] * d[0] + LUMA[1] * d[1] + LUMA[2] * d[2];
    let reach = Infinity;
    for (let ch = 0; ch < 3; ch++) {
      d[ch] -= dl;
      if (d[ch] > 1e-12) reach = Math.min(reach, (1 - lum) / d[ch]);
      else if (d[ch] < -1e-12) reach = Math.min(reach, -lum / d[ch]);
    }
    const step = Number.isFinite(reach) ? reach * u[8] : 0;
    const colour = d.map((dc) => Math.min(1, Math.max(0, lum + step * dc))) as [number, number, number];

    for (let p = 0; p < size * size; p++) if (cov[p] > 0) blend(rgb, p, cov[p], colour[0], colour[1], colour[2]);

    if (channels === 3) out.set(rgb, offset);
    else for (let p = 0; p < size * size; p++) out[offset + p] = LUMA[0] * rgb[3 * p] + LUMA[1] * rgb[3 * p + 1] + LUMA[2] * rgb[3 * p + 2];

    return { label, shape: SHAPE_NAMES[label], x, y, scale, rotation, colour, luminance: lum, backgroundLuminance: lb };
  };
}

/**
 * `count` procedurally drawn examples (NHWC float32 in [0, 1]) with classNames. Example j is
 * rendered from foldIn(key(seed), j), so a smaller count gives a prefix of a larger one.
 */
export function proceduralDataset(options: ProceduralOptions & { count: number }): Dataset {
  const o = resolveOptions('proceduralDataset', options, true);
  const render = makeRenderer(o);
  const per = o.size * o.size * o.channels;
  const images = new Float32Array(o.count * per);
  const labels = new Int32Array(o.count);
  for (let j = 0; j < o.count; j++) labels[j] = render(j, images, j * per).label;
  return { images, labels, shape: [o.count, o.size, o.size, o.channels], classNames: SHAPE_NAMES.slice(0, o.classes) };
}

/** Example `index` of proceduralDataset(options) on its own, with the parameters it was drawn with. */
export function proceduralExample(options: ProceduralOptions, index: number): { image: Float32Array; label: number; params: ProceduralParams } {
  const o = resolveOptions('proceduralExample', options, false);
  if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index > 0xffffffff) {
    throw new ValueError(`proceduralExample: index must be an integer in [0, 2^32), got ${describe(index)}`);
  }
  const image = new Float32Array(o.size * o.size * o.channels);
  const params = makeRenderer(o)(index, image, 0);
  return { image, label: params.label, params };
}

/**
 * Coverage (fraction of each pixel inside the shape, size*size floats) of one shape drawn alone
 * the way the dataset draws it: centroid at (x, y) pixels (default the image centre), radius
 * OBJECT_RADIUS * size * scale (to within about 0.5 %), rotated clockwise by `rotation` degrees.
 */
export function shapeCoverage(
  shape: ShapeName,
  size: number,
  placement: { x?: number; y?: number; scale?: number; rotation?: number } = {},
): Float32Array {
  const kind = SHAPE_NAMES.indexOf(shape);
  if (kind < 0) throw new ValueError(`shapeCoverage: shape must be one of ${SHAPE_NAMES.join(', ')}, got ${describe(shape)}`);
  if (typeof size !== 'number' || !Number.isInteger(size) || size < 1 || size > 4096) {
    throw new ValueError(`shapeCoverage: size must be an integer in [1, 4096], got ${describe(size)}`);
  }
  if (typeof placement !== 'object' || placement === null) {
    throw new ValueError(`shapeCoverage: placement must be an object { x?, y?, scale?, rotation? }, got ${describe(placement)}`);
  }
  const { x = size / 2, y = size / 2, scale = 1, rotation = 0 } = placement;
  for (const [name, v] of [['x', x], ['y', y], ['rotation', rotation]] as const) {
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new ValueError(`shapeCoverage: placement.${name} must be a finite number, got ${describe(v)}`);
  }
  if (typeof scale !== 'number' || !(scale > 0 && scale < 1e6)) {
    throw new ValueError(`shapeCoverage: placement.scale must be a positive number, got ${describe(scale)}`);
  }
  const cov = new Float32Array(size * size);
  renderCoverage(kind, size, x, y, OBJECT_RADIUS * size * scale, (rotation * Math.PI) / 180, cov);
  return cov;
}

// ---------------------------------------------------------------------------------------------
// Normalisation.

/** The mean-gray pixel (0.5 in every channel) used for plain backgrounds and alpha compositing. */
export function meanGray(channels: number): number[] {
  if (channels !== 1 && channels !== 3) throw new ValueError(`meanGray: channels must be 1 or 3, got ${describe(channels)}`);
  return new Array<number>(channels).fill(0.5);
}

type ImageBlock = { images: Float32Array; shape: readonly [number, number, number, number] };

function checkImageBlock(fn: string, data: unknown): asserts data is ImageBlock {
  const d = data as Partial<ImageBlock> | null;
  if (typeof d !== 'object' || d === null || !(d.images instanceof Float32Array) || !Array.isArray(d.shape) || d.shape.length !== 4) {
    throw new ValueError(`${fn}: data must be { images: Float32Array, shape: [N, H, W, C] } (a dataset or batch), got ${describe(data)}`);
  }
  const c = d.shape[3];
  if (!Number.isInteger(c) || c < 1 || d.images.length % c !== 0) {
    throw new ValueError(`${fn}: data.shape[3] (channels) must be a positive integer dividing images.length ${d.images.length}, got ${describe(c)}`);
  }
}

/** Per-channel mean and standard deviation (population) of NHWC images. */
export function channelStats(data: { images: Float32Array; shape: readonly [number, number, number, number] }): { mean: number[]; std: number[] } {
  checkImageBlock('channelStats', data);
  const c = data.shape[3];
  const px = data.images;
  const n = px.length / c;
  if (n === 0) throw new ValueError(`channelStats: data must hold at least one pixel, got ${px.length} values`);
  const sum = new Float64Array(c);
  for (let i = 0; i < px.length; i++) sum[i % c] += px[i];
  const mean = Array.from(sum, (s) => s / n);
  const sq = new Float64Array(c);
  for (let i = 0; i < px.length; i++) sq[i % c] += (px[i] - mean[i % c]) ** 2;
  return { mean, std: Array.from(sq, (s) => Math.sqrt(s / n)) };
}

/**
 * A new Float32Array of (x - mean[c]) / std[c] per channel c. Missing mean/std are measured on
 * `data` itself; a measured std of 0 (a constant channel) is replaced by 1.
 */
export function normalizeImages(
  data: { images: Float32Array; shape: readonly [number, number, number, number] },
  mean?: ArrayLike<number>,
  std?: ArrayLike<number>,
): Float32Array {
  checkImageBlock('normalizeImages', data);
  const c = data.shape[3];
  for (const [name, v] of [['mean', mean], ['std', std]] as const) {
    if (v !== undefined && (typeof v !== 'object' || v === null || v.length !== c)) {
      throw new ValueError(`normalizeImages: ${name} must have one value per channel (${c}), got ${describe(v)}`);
    }
  }
  const stats = mean === undefined || std === undefined ? channelStats(data) : undefined;
  const m = Array.from(mean ?? stats!.mean);
  const s = std !== undefined ? Array.from(std) : stats!.std.map((v) => (v > 0 ? v : 1));
  m.forEach((v, i) => {
    if (!Number.isFinite(v)) throw new ValueError(`normalizeImages: mean[${i}] must be finite, got ${describe(v)}`);
  });
  s.forEach((v, i) => {
    if (!(v > 0 && Number.isFinite(v))) throw new ValueError(`normalizeImages: std[${i}] must be a positive finite number, got ${describe(v)}`);
  });
  const px = data.images;
  const out = new Float32Array(px.length);
  for (let i = 0; i < px.length; i++) out[i] = (px[i] - m[i % c]) / s[i % c];
  return out;
}
