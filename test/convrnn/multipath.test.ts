/**
 * zhang2021 §4.2 (Fig. 4, Appendix E): a recurrent block is an ensemble of
 * feedforward paths of different lengths with shared weights.
 *
 * The law checked here. Take identity activations, no conv biases, and every
 * batch norm in evaluation mode, i.e. the fixed per-channel affine map
 * BN^{(m,t)}(z) = D^{(m,t)} z + c^{(m,t)} with D = γ/sqrt(σ² + ε), c = β − μ·D.
 * Then eq. 2i, y^{(m,t)} = BN^{(m,t)}(F_m y^{(m−1,t)} + W_m y^{(m,t−1)}), y^{(m,0)} = 0,
 * is linear, and unrolling it T steps under the 'standard' wiring gives
 *
 *   y^{(M,T)} = Σ_{p ∈ P(M,T)} p,
 *   P(1,t) = { D¹F₁x, c¹ }                                  (the first CPB)
 *   P(m,t) = { D^{(m,t)} F_m q : q ∈ P(m−1,t) } ∪ { D^{(m,t)} W_m q : q ∈ P(m,t−1) } ∪ { c^{(m,t)} },   P(m,0) = ∅,
 *
 * each path a chain of convs and diagonal scalings (its length is its number
 * of convs), starting at the image x or at an offset c. With zero offsets only
 * the image's paths remain: for one RCPB after the CPB, one path of each
 * length 1..T through the RCPB (F then 0..T−1 lateral W's), exactly the
 * multi-path ensemble of Fig. 4b.
 */
import { describe, expect, it } from 'vitest';
import { key } from '../../src/tensor/random.js';
import { randn, tensor, uniform } from '../../src/tensor/create.js';
import { Tensor } from '../../src/tensor/tensor.js';
import { makeNetwork, unroll, type NetworkBuffers, type NetworkParams } from '../../src/convrnn/index.js';

const H = 5;
const C = 3;
const EPS = 1e-5;

/** 3x3 'same' convolution, stride 1, no bias, in float64: x [H, H, Cin], w HWIO. */
function conv3(x: Float64Array, cin: number, w: Float32Array, cout: number): Float64Array {
  const y = new Float64Array(H * H * cout);
  for (let i = 0; i < H; i++)
    for (let j = 0; j < H; j++)
      for (let o = 0; o < cout; o++) {
        let acc = 0;
        for (let di = 0; di < 3; di++)
          for (let dj = 0; dj < 3; dj++) {
            const a = i + di - 1;
            const b = j + dj - 1;
            if (a < 0 || b < 0 || a >= H || b >= H) continue;
            for (let c = 0; c < cin; c++) acc += x[(a * H + b) * cin + c] * w[((di * 3 + dj) * cin + c) * cout + o];
          }
        y[(i * H + j) * cout + o] = acc;
      }
  return y;
}

type Op = { conv: Float32Array; cin: number } | { scale: number[] };
interface Path {
  /** The image, or a constant offset per channel. */
  source: 'x' | number[];
  ops: Op[];
}

function evaluate(p: Path, x: Float64Array, cin: number): Float64Array {
  let v = p.source === 'x' ? x : Float64Array.from({ length: H * H * C }, (_, i) => (p.source as number[])[i % C]);
  let c = p.source === 'x' ? cin : C;
  for (const op of p.ops) {
    if ('conv' in op) {
      v = conv3(v, c, op.conv, C);
      c = C;
    } else v = v.map((z, i) => z * op.scale[i % C]);
  }
  return v;
}

const convCount = (p: Path): number => p.ops.filter((op) => 'conv' in op).length;

interface Affine {
  D: number[];
  c: number[];
}

function affineOf(bn: { gamma: Tensor; beta: Tensor }, state: { mean: Tensor; var: Tensor }): Affine {
  const g = bn.gamma.toArray();
  const b = bn.beta.toArray();
  const m = state.mean.toArray();
  const v = state.var.toArray();
  const D = Array.from(g, (gi, i) => gi / Math.sqrt(v[i] + EPS));
  return { D, c: Array.from(b, (bi, i) => bi - m[i] * D[i]) };
}

/** A CPB (conv + BN, identity) then `rcpbs` RCPBs (identity), standard wiring; random BN params and statistics. */
function setup(rcpbs: number, T: number, inC: number, zeroOffsets: boolean, seed: number) {
  const layers = [
    { ff: [{ kind: 'conv', channels: C, kernelSize: 3, bias: false }, { kind: 'batchNorm' }] },
    ...Array.from({ length: rcpbs }, () => ({
      ff: [{ kind: 'conv', channels: C, kernelSize: 3, bias: false }],
      cell: { kind: 'rcpb', iterations: T, kernelSize: 3, activation: 'identity' },
    })),
  ];
  const net = makeNetwork({ layers, wiring: 'standard', head: { kind: 'linear', classes: 2 } });
  const shape = [1, H, H, inC];
  const params: NetworkParams = net.init(key(seed), shape);
  const buffers: NetworkBuffers = net.initBuffers(shape);
  let k = seed * 1000;
  const randomBn = () => {
    const gamma = uniform(key(k++), [C], 0.5, 1.5);
    const variance = uniform(key(k++), [C], 0.5, 2);
    const mean = zeroOffsets ? tensor(new Float32Array(C)) : randn(key(k++), [C], 0.5);
    // β = μ·D makes the offset c = β − μ·D vanish (up to rounding), leaving only the image's paths
    const D = gamma.toArray().map((g, i) => g / Math.sqrt(variance.toArray()[i] + EPS));
    const beta = zeroOffsets ? tensor(Float32Array.from(D, (d, i) => d * mean.toArray()[i])) : randn(key(k++), [C], 0.5);
    return { params: { gamma, beta }, state: { mean, var: variance } };
  };
  const first = randomBn();
  params.layers[0].ff[1] = first.params;
  buffers.layers[0].ff[1] = first.state;
  for (let m = 1; m <= rcpbs; m++) {
    const bns = Array.from({ length: T }, randomBn);
    (params.layers[m].cell as { bn: unknown[] }).bn = bns.map((b) => b.params);
    buffers.layers[m].cell = { bn: bns.map((b) => b.state) };
  }
  return { net, params, buffers, shape };
}

/** P(M, T) of the module comment, built from the network's own weights and affine maps. */
function paths(params: NetworkParams, buffers: NetworkBuffers, rcpbs: number, T: number, inC: number): Path[] {
  const w = (p: unknown): Float32Array => (p as { w: Tensor }).w.toArray();
  const F1: Op = { conv: w(params.layers[0].ff[0]), cin: inC };
  const bn1 = affineOf(params.layers[0].ff[1] as never, buffers.layers[0].ff[1] as never);
  const memo = new Map<string, Path[]>();
  const P = (m: number, t: number): Path[] => {
    if (t === 0) return [];
    if (m === 0) return [{ source: 'x', ops: [F1, { scale: bn1.D }] }, { source: bn1.c, ops: [] }];
    const id = `${m}/${t}`;
    if (memo.has(id)) return memo.get(id)!;
    const cell = params.layers[m].cell as { lateral: { w: Tensor }; bn: { gamma: Tensor; beta: Tensor }[] };
    const state = buffers.layers[m].cell as { bn: { mean: Tensor; var: Tensor }[] };
    const { D, c } = affineOf(cell.bn[t - 1], state.bn[t - 1]);
    const F: Op = { conv: w(params.layers[m].ff[0]), cin: C };
    const W: Op = { conv: cell.lateral.w.toArray(), cin: C };
    const out: Path[] = [
      ...P(m - 1, t).map((q) => ({ source: q.source, ops: [...q.ops, F, { scale: D }] })),
      ...P(m, t - 1).map((q) => ({ source: q.source, ops: [...q.ops, W, { scale: D }] })),
      { source: c, ops: [] },
    ];
    memo.set(id, out);
    return out;
  };
  return P(rcpbs, T);
}

function expectClose(got: Float32Array, want: Float64Array): void {
  const scale = Math.max(...Array.from(want, Math.abs));
  expect(scale).toBeGreaterThan(1e-3);
  for (let i = 0; i < want.length; i++) expect(Math.abs(got[i] - want[i])).toBeLessThan(2e-5 * scale + 1e-6);
}

describe('zhang2021 §4.2: an RCPB stack is the sum of its feedforward paths', () => {
  for (const [rcpbs, T, inC] of [[1, 4, 1], [2, 3, 2], [2, 4, 1]] as const) {
    it(`${rcpbs} RCPB(s), T = ${T}: the unrolled output equals the sum over all paths`, () => {
      const { net, params, buffers, shape } = setup(rcpbs, T, inC, false, 1 + rcpbs + T);
      const x = randn(key(99), shape);
      const r = unroll(net, params, x, T, { training: false, buffers });
      const ps = paths(params, buffers, rcpbs, T, inC);
      const xs = Float64Array.from(x.toArray());
      const sum = new Float64Array(H * H * C);
      for (const p of ps) evaluate(p, xs, inC).forEach((v, i) => (sum[i] += v));
      expectClose(r.outputs[T - 1][rcpbs].toArray(), sum);
      // a path left out breaks the equality: the law is not satisfied by accident
      const partial = new Float64Array(H * H * C);
      for (const p of ps.slice(1)) evaluate(p, xs, inC).forEach((v, i) => (partial[i] += v));
      const diff = Math.max(...Array.from(partial, (v, i) => Math.abs(v - sum[i])));
      expect(diff).toBeGreaterThan(1e-3);
    });
  }

  it('with zero offsets, one RCPB over T steps is the sum of T image paths of lengths 1..T through the block', () => {
    const T = 5;
    const { net, params, buffers, shape } = setup(1, T, 2, true, 7);
    const x = randn(key(98), shape);
    const r = unroll(net, params, x, T, { training: false, buffers });
    const image = paths(params, buffers, 1, T, 2).filter((p) => p.source === 'x');
    // lengths through the block: its F, then 0..T−1 lateral convs (plus the CPB's conv before it)
    expect(image.map((p) => convCount(p) - 1).sort()).toEqual([1, 2, 3, 4, 5]);
    const xs = Float64Array.from(x.toArray());
    const sum = new Float64Array(H * H * C);
    for (const p of image) evaluate(p, xs, 2).forEach((v, i) => (sum[i] += v));
    expectClose(r.outputs[T - 1][1].toArray(), sum);
  });
});
