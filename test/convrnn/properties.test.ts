import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { foldIn, key } from '../../src/tensor/random.js';
import { randn } from '../../src/tensor/create.js';
import { Tensor, scope } from '../../src/tensor/tensor.js';
import { ConfigError } from '../../src/tensor/errors.js';
import { valueAndGrad } from '../../src/autodiff/index.js';
import { convLayer, maxPool, avgPool } from '../../src/nn/layers.js';
import { elu, tanh } from '../../src/tensor/ops/unary.js';
import { softmaxCrossEntropy } from '../../src/nn/losses.js';
import { flattenParams, treeEqual, treeMap } from '../../src/nn/tree.js';
import { makeNetwork, unroll, minimalUnroll, readModelConfig, type NetworkParams, type Network } from '../../src/convrnn/index.js';

// ---- random small networks -------------------------------------------------------------

interface LayerSpec {
  channels: number;
  kernel: 1 | 3;
  stride: 1 | 2;
  act: 'elu' | 'tanh';
  pool: 'maxPool' | 'avgPool' | null;
  cell: string | null;
  norm: boolean;
}
interface NetSpec {
  layers: LayerSpec[];
  edges: { from: number; to: number; at: 'input' | 'state' | 'output' }[];
  wiring: 'delays' | 'standard';
  batch: number;
  inC: number;
}

const CELLS = ['timeDecay', 'rgc', 'gru', 'ugrnn', 'simpleRnn', 'lstm', 'intersectionRnn'];

const layerArb = (cells: (string | null)[], norm: boolean): fc.Arbitrary<LayerSpec> =>
  fc.record({
    channels: fc.integer({ min: 2, max: 4 }),
    kernel: fc.constantFrom<1 | 3>(1, 3),
    stride: fc.constantFrom<1 | 2>(1, 1, 2),
    act: fc.constantFrom<'elu' | 'tanh'>('elu', 'tanh'),
    pool: fc.constantFrom<'maxPool' | 'avgPool' | null>(null, null, 'maxPool', 'avgPool'),
    cell: fc.constantFrom(...cells),
    norm: norm ? fc.boolean() : fc.constant(false),
  });

function netArb(opts: { cells?: (string | null)[]; feedback?: boolean; norm?: boolean; wiring?: ('delays' | 'standard')[] } = {}): fc.Arbitrary<NetSpec> {
  const cells = opts.cells ?? [null, null, ...CELLS];
  return fc
    .record({
      layers: fc.array(layerArb(cells, opts.norm ?? false), { minLength: 2, maxLength: 3 }),
      rawEdges: opts.feedback === false ? fc.constant([]) : fc.array(fc.tuple(fc.nat(), fc.nat(), fc.constantFrom<'input' | 'state' | 'output'>('input', 'state', 'output')), { maxLength: 2 }),
      wiring: fc.constantFrom(...(opts.wiring ?? (['delays', 'standard'] as const))),
      batch: fc.integer({ min: 1, max: 2 }),
      inC: fc.integer({ min: 1, max: 3 }),
    })
    .map(({ layers, rawEdges, wiring, batch, inC }) => {
      const L = layers.length;
      const edges: NetSpec['edges'] = [];
      for (const [a, b, at] of rawEdges) {
        const to = 1 + (a % (L - 1));
        const from = to + 1 + (b % (L - to));
        if (!edges.some((e) => e.from === from && e.to === to && e.at === at)) edges.push({ from, to, at });
      }
      return { layers, edges, wiring, batch, inC };
    });
}

function configOf(spec: NetSpec, decoder = 'last'): Record<string, unknown> {
  return {
    layers: spec.layers.map((l) => ({
      ff: [{ kind: 'conv', channels: l.channels, kernelSize: l.kernel, stride: l.stride }, ...(l.norm ? [{ kind: 'batchNorm' }] : [])],
      cell: l.cell === null ? null : { kind: l.cell },
      post: [{ kind: l.act }, ...(l.pool === null ? [] : [{ kind: l.pool, size: 2 }])],
    })),
    feedback: spec.edges,
    wiring: spec.wiring,
    head: { kind: 'linear', classes: 3 },
    decoder: { kind: decoder },
  };
}

const inputShape = (spec: NetSpec): number[] => [spec.batch, 8, 8, spec.inC];
const bits = (t: Tensor): number[] => Array.from(new Uint32Array(t.toArray().buffer));
const stimuli = (spec: NetSpec, T: number, seed: number): Tensor[] => Array.from({ length: T }, (_, t) => randn(key(seed * 100 + t), inputShape(spec)));

// ---- laws ---------------------------------------------------------------------------------

describe('network laws (random small configs)', () => {
  it('fold law: unroll T1+T2 equals unroll T1, then T2 from the carried state (same bits)', () => {
    fc.assert(
      fc.property(netArb({ norm: true }), fc.integer({ min: 1, max: 3 }), fc.integer({ min: 1, max: 3 }), fc.boolean(), (spec, T1, T2, training) =>
        scope(() => {
          const net = makeNetwork(configOf(spec));
          const xs = stimuli(spec, T1 + T2, 1);
          // a static stretch exercises the reuse of unchanged layers across the cut
          xs[T1] = xs[T1 - 1];
          const p = net.init(key(2), inputShape(spec));
          const whole = unroll(net, p, xs, T1 + T2, { training });
          const first = unroll(net, p, xs.slice(0, T1), T1, { training });
          const second = unroll(net, p, xs.slice(T1), T2, { training, state: first.state, t0: T1 });
          const parts = [...first.outputs, ...second.outputs];
          parts.forEach((o, t) => o.forEach((r, l) => expect(bits(r)).toEqual(bits(whole.outputs[t][l]))));
          expect(treeEqual(second.state, whole.state)).toBe(true);
        }),
      ),
      { numRuns: 12 },
    );
  });

  it('purity: the network step twice on the same arguments gives the same bits and mutates nothing', () => {
    fc.assert(
      fc.property(netArb({ norm: true }), fc.integer({ min: 0, max: 3 }), fc.boolean(), (spec, warm, training) =>
        scope(() => {
          const net = makeNetwork(configOf(spec));
          const x = randn(key(3), inputShape(spec));
          const p = net.init(key(4), x.shape);
          const s = warm === 0 ? net.initialState(x.shape) : unroll(net, p, x, warm, { training }).state;
          const snapshot = (tree: unknown) => [...flattenParams(tree)].map(([name, t]) => [name, t, bits(t)] as const);
          const before = [snapshot(p), snapshot(s), bits(x)] as const;
          const [s1, y1] = net.step(p, s, x, { t: warm, training });
          const [s2, y2] = net.step(p, s, x, { t: warm, training });
          expect(bits(y1)).toEqual(bits(y2));
          expect(treeEqual(s1, s2)).toBe(true);
          const after = [snapshot(p), snapshot(s), bits(x)] as const;
          for (const k of [0, 1]) {
            expect(after[k].length).toBe(before[k].length);
            after[k].forEach(([name, t, b], i) => {
              expect(name).toBe(before[k][i][0]);
              expect(t).toBe(before[k][i][1]);
              expect(b).toEqual(before[k][i][2]);
            });
          }
          expect(after[2]).toEqual(before[2]);
        }),
      ),
      { numRuns: 10 },
    );
  });

  it("feedforward limit: no cells, no feedback, 'delays': layer L at step L is the plain feedforward pass", () => {
    fc.assert(
      fc.property(netArb({ cells: [null], feedback: false, wiring: ['delays'] }), (spec) =>
        scope(() => {
          const net = makeNetwork(configOf(spec));
          const x = randn(key(5), inputShape(spec));
          const p = net.init(key(6), x.shape);
          const L = spec.layers.length;
          const r = unroll(net, p, x, L + 1);
          // The same layers applied directly, once, in order.
          let y = x;
          spec.layers.forEach((l, i) => {
            const conv = { inChannels: y.shape[3], outChannels: l.channels, kernelSize: l.kernel, stride: l.stride };
            y = convLayer.apply(p.layers[i].ff[0] as never, y, conv);
            y = l.act === 'elu' ? elu(y) : tanh(y);
            if (l.pool === 'maxPool') y = maxPool(y, { size: 2, padding: 'same' });
            if (l.pool === 'avgPool') y = avgPool(y, { size: 2, padding: 'same' });
          });
          expect(bits(r.outputs[L - 1][L - 1])).toEqual(bits(y));
          // before step L the top layer has not seen the stimulus: it differs
          if (L > 1) expect(bits(r.outputs[L - 2][L - 1])).not.toEqual(bits(y));
        }),
      ),
      { numRuns: 12 },
    );
  });

  it('time-decay cells with τ = 0 give the feedforward network, at every step, under both wirings', () => {
    fc.assert(
      fc.property(netArb({ cells: [null], feedback: true }), fc.integer({ min: 1, max: 5 }), fc.array(fc.boolean(), { minLength: 3, maxLength: 3 }), (spec, T, withCell) =>
        scope(() => {
          const decaySpec: NetSpec = { ...spec, layers: spec.layers.map((l, i) => ({ ...l, cell: withCell[i] ? 'timeDecay' : null })) };
          const decay = makeNetwork(configOf(decaySpec));
          const ff = makeNetwork(configOf(spec));
          const p = decay.init(key(7), inputShape(spec));
          const q: NetworkParams = { ...p, layers: p.layers.map(({ cell: _cell, ...rest }) => rest) };
          const xs = stimuli(spec, T, 8);
          const a = unroll(decay, p, xs, T);
          const b = unroll(ff, q, xs, T);
          a.outputs.forEach((o, t) =>
            o.forEach((r, l) => {
              const u = r.toArray();
              const v = b.outputs[t][l].toArray();
              for (let i = 0; i < u.length; i++) if (u[i] !== v[i]) expect(u[i]).toBe(v[i]);
            }),
          );
        }),
      ),
      { numRuns: 10 },
    );
  });

  it('minimal unrolling: every parameter has a nonzero gradient at minimalUnroll(network) steps, some none at one step fewer', () => {
    /** Each tensor of the gradient, and each feedback source's block of input channels of a conv on its own: has it a nonzero? */
    const used = (net: Network, spec: NetSpec, g: NetworkParams): Map<string, boolean> => {
      const out = new Map<string, boolean>();
      for (const [name, t] of flattenParams(g)) out.set(name, t.toArray().some((v) => v !== 0));
      const shapes = net.shapes(inputShape(spec));
      /** w's gradient restricted to input channels [lo, lo + C_j) for each source j, in order. */
      const blocks = (name: string, w: Tensor, lo: number, sources: readonly number[]): void => {
        const [kh, kw, cin, cout] = w.shape;
        const data = w.toArray();
        for (const j of sources) {
          const hi = lo + shapes[j - 1].output[3];
          let any = false;
          for (let k = 0; k < kh * kw; k++) for (let c = lo; c < hi; c++) for (let o = 0; o < cout; o++) any ||= data[(k * cin + c) * cout + o] !== 0;
          out.set(`${name}[feedback from ${j}]`, any);
          lo = hi;
        }
      };
      spec.layers.forEach((_, i) => {
        const fb = net.feedbackInto[i];
        const l = g.layers[i];
        blocks(`layers.${i}.ff.0.w`, (l.ff[0] as { w: Tensor }).w, i === 0 ? spec.inC : shapes[i - 1].output[3], fb.input);
        if (l.fbState !== undefined) blocks(`layers.${i}.fbState.w`, l.fbState.w, 0, fb.state);
        if (l.fbOutput !== undefined) blocks(`layers.${i}.fbOutput.w`, l.fbOutput.w, 0, fb.output);
      });
      return out;
    };
    fc.assert(
      fc.property(netArb({ cells: [null, ...CELLS] }), (spec) =>
        scope(() => {
          const net = makeNetwork(configOf(spec));
          const T = minimalUnroll(net);
          const x = randn(key(9), inputShape(spec));
          const labels = Array.from({ length: spec.batch }, (_, i) => i % 3);
          // Random values in the init's structure: use is a property of the wiring, not of the init (zero RGC gates).
          let i = 0;
          const p = treeMap(net.init(key(10), x.shape), (t) => randn(foldIn(key(10), i++), t.shape, 0.5));
          const gradAt = (steps: number): NetworkParams =>
            valueAndGrad((q: NetworkParams) => softmaxCrossEntropy(unroll(net, q, x, steps).decoded.logits, labels))(p)[1] as NetworkParams;
          const full = used(net, spec, gradAt(T));
          for (const [name, nonzero] of full) expect({ name, nonzero }).toEqual({ name, nonzero: true });
          if (T > 1) expect([...used(net, spec, gradAt(T - 1)).values()].some((nonzero) => !nonzero)).toBe(true);
        }),
      ),
      { numRuns: 15 },
    );
  });

  it("shapes: every layer's output at every step has the shape its config says", () => {
    const out = (n: number, s: number): number => Math.ceil(n / s);
    fc.assert(
      fc.property(netArb({ norm: true }), fc.integer({ min: 1, max: 4 }), (spec, T) =>
        scope(() => {
          const net = makeNetwork(configOf(spec));
          const expected: number[][] = [];
          let h = 8;
          for (const l of spec.layers) {
            h = out(h, l.stride);
            if (l.pool !== null) h = out(h, 2);
            expected.push([spec.batch, h, h, l.channels]);
          }
          expect(net.shapes(inputShape(spec)).map((s) => s.output)).toEqual(expected);
          const r = unroll(net, net.init(key(11), inputShape(spec)), randn(key(12), inputShape(spec)), T);
          r.outputs.forEach((o) => expect(o.map((t) => t.shape)).toEqual(expected));
          expect(r.decoded.logits.shape).toEqual([spec.batch, 3]);
        }),
      ),
      { numRuns: 12 },
    );
  });

  it('invalid configs throw ConfigError naming the field', () => {
    type Corruption = [string, (c: Record<string, any>, L: number, i: number) => void, (L: number, i: number) => RegExp];
    const corruptions: Corruption[] = [
      ['feedback to a nonexistent layer', (c, L) => c.network.feedback.push({ from: L + 1, to: 1 }), (L) => new RegExp(`config\\.network\\.feedback\\[\\d+\\]\\.from must be an integer in \\[1, ${L}\\]`)],
      ['feedback from a nonexistent layer 0', (c) => c.network.feedback.push({ from: 2, to: 0 }), () => /config\.network\.feedback\[\d+\]\.to/],
      ['a cell kind that does not exist', (c, L, i) => (c.network.layers[i % L].cell = { kind: 'hopfield' }), (L, i) => new RegExp(`config\\.network\\.layers\\[${i % L}\\]\\.cell: makeCell: config\\.kind must be one of .*'rcpb'`)],
      ['negative T', (c, _L, i) => (c.T = -1 - i), () => /config\.T must be a positive integer/],
      ['imageOff > T', (c, _L, i) => (c.imageOff = c.T + 1 + i), () => /config\.imageOff must be an integer in \[0, \d+\]/],
      ['imageOff < 0', (c, _L, i) => (c.imageOff = -1 - i), () => /config\.imageOff/],
      ['an unknown key in a layer', (c, L, i) => (c.network.layers[i % L].kernel = 3), (L, i) => new RegExp(`unknown key config\\.network\\.layers\\[${i % L}\\]\\.kernel`)],
      ['an unknown key in an op', (c, L, i) => (c.network.layers[i % L].post[0].alpha = 1), (L, i) => new RegExp(`unknown key config\\.network\\.layers\\[${i % L}\\]\\.post\\[0\\]\\.alpha`)],
      ['an unknown top-level key', (c) => (c.seed = 1), () => /unknown key config\.seed/],
    ];
    fc.assert(
      fc.property(netArb(), fc.integer({ min: 1, max: 6 }), fc.nat(corruptions.length - 1), fc.nat(5), (spec, T, which, i) => {
        const c: Record<string, any> = { network: configOf(spec), T };
        expect(() => readModelConfig(c)).not.toThrow();
        const [, corrupt, pattern] = corruptions[which];
        const L = spec.layers.length;
        corrupt(c, L, i);
        expect(() => readModelConfig(c)).toThrow(ConfigError);
        expect(() => readModelConfig(c)).toThrow(pattern(L, i));
      }),
      { numRuns: 30 },
    );
  });
});
