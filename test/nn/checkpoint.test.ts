import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import fs from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { key, split, foldIn, Key } from '../../src/tensor/random.js';
import { randn, tensor } from '../../src/tensor/create.js';
import { Tensor, dispose, scope } from '../../src/tensor/tensor.js';
import { ConfigError, DataError, ValueError } from '../../src/tensor/errors.js';
import { relu } from '../../src/tensor/ops/unary.js';
import { valueAndGrad } from '../../src/autodiff/index.js';
import { readSafetensors, writeSafetensors } from '../../src/nn/io/safetensors.js';
import { save, load, sidecarPath } from '../../src/nn/checkpoint.js';
import { treeEqual } from '../../src/nn/tree.js';
import { sgd, adam, withGradTransforms, clipByValue } from '../../src/nn/optim.js';
import { convLayer, linearLayer, globalAvgPool, dropout, type ConvConfig, type LinearConfig } from '../../src/nn/layers.js';
import { softmaxCrossEntropy } from '../../src/nn/losses.js';
import { cosine } from '../../src/nn/schedule.js';

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(join(os.tmpdir(), 'convrnn-ckpt-'));
});
afterAll(() => {
  fs.rmSync(dir, { recursive: true, force: true });
});
afterEach(() => {
  vi.restoreAllMocks();
});

const sha = (p: string) => createHash('sha256').update(fs.readFileSync(p)).digest('hex');

function makeParams(seed: number) {
  const ks = split(key(seed), 5);
  return {
    conv1: { w: randn(ks[0], [3, 3, 2, 4]), b: randn(ks[1], [4]) },
    layers: [{ w: randn(ks[2], [4, 5]) }, { dw: randn(ks[3], [3, 3, 4, 2]) }] as [{ w: Tensor }, { dw: Tensor }],
    scale: randn(ks[4], [1]),
  };
}

describe('save / load', () => {
  it('round trip: params, optimizer state, key, step, config and extra come back bit-exact', () => {
    const params = makeParams(1);
    const opt = adam({ lr: 0.01 });
    const st0 = opt.init(params);
    const grads = makeParams(2);
    const [p1, optState] = opt.update(params, grads, st0);
    const k = new Key(0xdeadbeef, 12345);
    const path = join(dir, 'round.safetensors');
    const config = { model: 'tiny', layers: [1, 2], lr: 0.01 };
    save(path, { params: p1, optState, key: k, step: 1, config, extra: { loss: [2.5, 2.25] } });
    expect(fs.existsSync(sidecarPath(path))).toBe(true);
    const got = load<typeof p1, typeof optState>(path);
    expect(treeEqual(got.params, p1)).toBe(true);
    expect(treeEqual(got.optState, optState)).toBe(true);
    expect(got.key).toBeInstanceOf(Key);
    expect([got.key.k0, got.key.k1]).toEqual([0xdeadbeef, 12345]);
    expect(got.step).toBe(1);
    expect(got.config).toEqual(config);
    expect(got.extra).toEqual({ loss: [2.5, 2.25] });
    expect(got.layout).toBe('native');
    // Structure is rebuilt: arrays stay arrays, names and shapes are kept.
    expect(Array.isArray(got.params.layers)).toBe(true);
    expect(got.params.layers[1].dw.shape).toEqual([3, 3, 4, 2]);
    expect((got.optState.count as Tensor).item()).toBe(1);
    // Weights are stored as plain safetensors under params. / opt. prefixes.
    const st = readSafetensors(path);
    expect(Object.keys(st.tensors).sort()).toContain('params.conv1.w');
    expect(Object.keys(st.tensors)).toContain('opt.m.layers.0.w');
    expect(Object.keys(st.tensors)).toContain('opt.count');
    dispose([params, st0, grads, p1, optState, got.params, got.optState]);
  });

  it('pytorch layout: conv HWIO -> OIHW, linear [in, out] -> [out, in], depthwise -> [C·M, 1, KH, KW]; load restores', () => {
    const params = makeParams(3);
    const path = join(dir, 'torch.safetensors');
    const kind = (name: string, shape: readonly number[]) => (name.endsWith('.dw') ? 'depthwise' : shape.length === 4 ? 'conv' : shape.length === 2 ? 'linear' : 'none');
    save(path, { params, key: key(0), step: 0, config: null }, { layout: 'pytorch', kind });
    const st = readSafetensors(path);
    expect(st.metadata.format).toBe('pt');

    const conv = st.tensors['params.conv1.w'];
    expect(conv.shape).toEqual([4, 2, 3, 3]);
    const cw = params.conv1.w.toArray();
    for (let o = 0; o < 4; o++)
      for (let i = 0; i < 2; i++)
        for (let h = 0; h < 3; h++)
          for (let w = 0; w < 3; w++) expect(conv.data[((o * 2 + i) * 3 + h) * 3 + w]).toBe(cw[((h * 3 + w) * 2 + i) * 4 + o]);

    const lin = st.tensors['params.layers.0.w'];
    expect(lin.shape).toEqual([5, 4]);
    const lw = params.layers[0].w.toArray();
    for (let o = 0; o < 5; o++) for (let i = 0; i < 4; i++) expect(lin.data[o * 4 + i]).toBe(lw[i * 5 + o]);

    const dw = st.tensors['params.layers.1.dw'];
    expect(dw.shape).toEqual([8, 1, 3, 3]);
    const dv = params.layers[1].dw.toArray();
    for (let c = 0; c < 4; c++)
      for (let m = 0; m < 2; m++)
        for (let h = 0; h < 3; h++)
          for (let w = 0; w < 3; w++) expect(dw.data[((c * 2 + m) * 3 + h) * 3 + w]).toBe(dv[((h * 3 + w) * 4 + c) * 2 + m]);

    expect(st.tensors['params.conv1.b'].shape).toEqual([4]);
    expect(Array.from(st.tensors['params.conv1.b'].data as Float32Array)).toEqual(Array.from(params.conv1.b.toArray()));

    const got = load<typeof params>(path);
    expect(got.layout).toBe('pytorch');
    expect(treeEqual(got.params, params)).toBe(true);
    expect(() => save(path, { params, key: key(0), step: 0, config: null }, { layout: 'pytorch', kind: () => 'linear' })).toThrow(ConfigError);
    dispose([params, got.params]);
  });

  it('resuming from a checkpoint continues with the exact bits of an uninterrupted run', () => {
    const convCfg: ConvConfig = { inChannels: 2, outChannels: 4, kernelSize: 3 };
    const linCfg: LinearConfig = { inFeatures: 4, outFeatures: 3 };
    const init = (k: Key) => {
      const [k1, k2] = split(k);
      return { conv: convLayer.init(k1, convCfg), out: linearLayer.init(k2, linCfg) };
    };
    type P = ReturnType<typeof init>;
    const batch = (k: Key, step: number) => {
      const kd = foldIn(k, step);
      const labels = Array.from({ length: 4 }, (_, i) => (step + i) % 3);
      return { x: randn(kd, [4, 5, 5, 2]), labels };
    };
    const loss = (p: P, x: Tensor, labels: number[], kdrop: Key) => {
      const h = dropout(kdrop, relu(convLayer.apply(p.conv, x, convCfg)), 0.25, true);
      return softmaxCrossEntropy(linearLayer.apply(p.out, globalAvgPool(h), linCfg), labels);
    };
    // The learning rate follows a schedule of the step the optimizer state counts, so the count must survive too.
    const opt = withGradTransforms(sgd({ lr: cosine({ lr: 0.2, totalSteps: 8 }), momentum: 0.9 }), clipByValue(0.7));
    type S = ReturnType<typeof opt.init>;
    const trainSteps = (params: P, state: S, k: Key, from: number, to: number): [P, S] => {
      for (let step = from; step < to; step++) {
        const [p, s] = scope(() => {
          const { x, labels } = batch(k, step);
          const [, g] = valueAndGrad((q: P) => loss(q, x, labels, foldIn(split(k)[1], step)))(params);
          return opt.update(params, g, state);
        });
        dispose([params, state]);
        params = p;
        state = s;
      }
      return [params, state];
    };
    const N = 6;
    const k0 = key(42);
    const p0 = init(k0);
    const [pA, sA] = trainSteps(p0, opt.init(p0), k0, 0, N);

    const q0 = init(k0);
    const [pHalf, sHalf] = trainSteps(q0, opt.init(q0), k0, 0, N / 2);
    const path = join(dir, 'resume.safetensors');
    save(path, { params: pHalf, optState: sHalf, key: k0, step: N / 2, config: { convCfg, linCfg } });
    dispose([pHalf, sHalf]);
    const ck = load<P, S>(path);
    const [pB, sB] = trainSteps(ck.params, ck.optState, ck.key, ck.step, N);

    expect(treeEqual(pA, pB)).toBe(true);
    expect(treeEqual(sA, sB)).toBe(true);
    // And the run moved: the params differ from their initial values.
    const fresh = init(k0);
    expect(treeEqual(pA, fresh)).toBe(false);
    dispose([pA, sA, pB, sB, fresh]);
  });
});

describe('load: malformed checkpoints', () => {
  const fresh = (name: string) => {
    const params = { conv: { w: randn(key(1), [3, 3, 1, 2]), b: randn(key(2), [2]) } };
    const path = join(dir, name);
    save(path, { params, optState: { count: tensor([4], []) }, key: key(9), step: 4, config: { a: 1 } });
    dispose(params);
    return path;
  };
  const rewriteWeights = (path: string, tensors: Record<string, { data: Float32Array; shape: number[] }>) => {
    writeSafetensors(path, tensors);
    const side = JSON.parse(fs.readFileSync(sidecarPath(path), 'utf8'));
    side.weightsSha256 = sha(path);
    fs.writeFileSync(sidecarPath(path), JSON.stringify(side));
  };

  it('missing files', () => {
    const path = fresh('missing.safetensors');
    fs.rmSync(path);
    expect(() => load(path)).toThrow(DataError);
    expect(() => load(path)).toThrow(/weights file .*missing\.safetensors does not exist/);
    const p2 = fresh('missing2.safetensors');
    fs.rmSync(sidecarPath(p2));
    expect(() => load(p2)).toThrow(/sidecar .*missing2\.safetensors\.json does not exist/);
  });

  it('corrupted or incomplete JSON sidecar', () => {
    const path = fresh('json.safetensors');
    const text = fs.readFileSync(sidecarPath(path), 'utf8');
    fs.writeFileSync(sidecarPath(path), text.slice(0, text.length / 2));
    expect(() => load(path)).toThrow(/json\.safetensors\.json is not valid JSON/);
    const side = JSON.parse(text);
    fs.writeFileSync(sidecarPath(path), JSON.stringify({ ...side, key: [1] }));
    expect(() => load(path)).toThrow(/json\.safetensors\.json: key must be/);
    fs.writeFileSync(sidecarPath(path), JSON.stringify({ ...side, format: 'other' }));
    expect(() => load(path)).toThrow(DataError);
    fs.writeFileSync(sidecarPath(path), JSON.stringify({ ...side, step: -1 }));
    expect(() => load(path)).toThrow(/step/);
  });

  it('weights replaced behind the sidecar (an interrupted save) are refused', () => {
    const path = fresh('swap.safetensors');
    writeSafetensors(path, { 'params.conv.w': { data: new Float32Array(18), shape: [3, 3, 1, 2] } });
    expect(() => load(path)).toThrow(/does not match its sidecar/);
  });

  it('a tensor missing, of the wrong shape or dtype, or not in the manifest', () => {
    const path = fresh('tensors.safetensors');
    const st = readSafetensors(path).tensors as Record<string, { data: Float32Array; shape: number[] }>;
    const { ['params.conv.b']: _b, ...rest } = st;
    rewriteWeights(path, rest);
    expect(() => load(path)).toThrow(/tensors\.safetensors: tensor "params\.conv\.b" is missing/);
    rewriteWeights(path, { ...st, 'params.conv.w': { data: new Float32Array(18), shape: [3, 3, 2, 1] } });
    expect(() => load(path)).toThrow(/tensor "params\.conv\.w" has shape \[3, 3, 2, 1\], the sidecar expects \[3, 3, 1, 2\]/);
    rewriteWeights(path, { ...st, 'params.conv.b': { data: new Float64Array(2) as never, shape: [2] } });
    expect(() => load(path)).toThrow(/"params\.conv\.b" has dtype F64/);
    rewriteWeights(path, { ...st, 'params.extra': { data: new Float32Array(1), shape: [1] } });
    expect(() => load(path)).toThrow(/"params\.extra" is not in the sidecar's manifest/);
  });

  it('a truncated weights file is a DataError naming the file', () => {
    const path = fresh('trunc.safetensors');
    const bytes = fs.readFileSync(path);
    fs.writeFileSync(path, bytes.subarray(0, bytes.length - 5));
    const side = JSON.parse(fs.readFileSync(sidecarPath(path), 'utf8'));
    side.weightsSha256 = sha(path);
    fs.writeFileSync(sidecarPath(path), JSON.stringify(side));
    expect(() => load(path)).toThrow(DataError);
    expect(() => load(path)).toThrow(/trunc\.safetensors/);
  });

  it('a failed save leaves the previous checkpoint loadable or detectably inconsistent, never silently mixed', () => {
    const path = fresh('crash.safetensors');
    const before = load(path);
    // Make the second rename (the sidecar's) fail: the weights are new, the sidecar old.
    const real = fs.renameSync;
    let calls = 0;
    vi.spyOn(fs, 'renameSync').mockImplementation((a, b) => {
      if (++calls === 2) throw new Error('disk full');
      return real(a, b);
    });
    const params = { conv: { w: randn(key(5), [3, 3, 1, 2]), b: randn(key(6), [2]) } };
    expect(() => save(path, { params, key: key(9), step: 5, config: {} })).toThrow(/disk full/);
    vi.restoreAllMocks();
    expect(() => load(path)).toThrow(/does not match its sidecar/);
    dispose([before.params, before.optState, params]);
  });

  it('save validates its arguments', () => {
    const params = { w: randn(key(1), [2]) };
    const path = join(dir, 'bad.safetensors');
    expect(() => save(path, { params, key: key(0), step: 0, config: { n: 1n } })).toThrow(ValueError);
    expect(() => save(path, { params, key: [1, 2] as never, step: 0, config: null })).toThrow(/key/);
    expect(() => save(path, { params, key: key(0), step: 1.5, config: null })).toThrow(/step/);
    expect(() => save(path, { params: { w: 3 }, key: key(0), step: 0, config: null })).toThrow(/"w"/);
    expect(() => save(path, { params, key: key(0), step: 0, config: null }, { layout: 'tf' as never })).toThrow(ConfigError);
    expect(fs.existsSync(path)).toBe(false);
    dispose(params);
  });
});
