/**
 * Train the small reciprocal-gated ConvRNN of the W7 benchmark (two RGC
 * layers, T = 8 steps, standard unrolling) on the built-in procedural shape
 * dataset, and report held-out accuracy. Usage:
 *
 *   node dist/examples/train-rgc.js [--epochs 2] [--train 2000] [--test 500] [--seed 0]
 */
import { key, split, tensor, scope, dispose, valueAndGrad, getThreads, type Tensor } from '../src/index.js';
import { adam } from '../src/nn/optim.js';
import { softmaxCrossEntropy, accuracy } from '../src/nn/losses.js';
import { batches, epochKey } from '../src/nn/data/dataset.js';
import { proceduralDataset, normalizeImages } from '../src/nn/data/procedural.js';
import { w7Init, w7Logits, type W7Params } from '../bench/w7.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? Number(process.argv[i + 1]) : fallback;
}

const epochs = arg('epochs', 2), nTrain = arg('train', 2000), nTest = arg('test', 500), seed = arg('seed', 0);
const T = 8, batchSize = 32, classes = 10;
const [kInit, kShuffle] = split(key(seed), 2);

const all = proceduralDataset({ seed, count: nTrain + nTest, size: 32, variation: 'medium', classes });
const images = normalizeImages(all);
const train = { ...all, images: images.subarray(0, nTrain * 32 * 32 * 3), labels: all.labels.subarray(0, nTrain), shape: [nTrain, 32, 32, 3] as [number, number, number, number] };

let params: W7Params = w7Init(kInit);
const opt = adam({ lr: 2e-3 });
let state = opt.init(params);
const loss = (p: W7Params, x: Tensor, y: Int32Array) => {
  const logits = w7Logits(p, x, T);
  return [softmaxCrossEntropy(logits, y), logits] as const;
};

console.log(`training a reciprocal-gated ConvRNN (T=${T}) on ${nTrain} procedural images, ${classes} classes, ${getThreads()} threads`);
const t0 = performance.now();
let total = 0;
for (let epoch = 0; epoch < epochs; epoch++) {
  let seen = 0, lossSum = 0, correct = 0;
  for (const b of batches(train, { batchSize, key: epochKey(kShuffle, epoch), dropLast: true })) {
    const next = scope(() => {
      const x = tensor(b.images, b.shape);
      const [[l, logits], g] = valueAndGrad((p: W7Params) => loss(p, x, b.labels), 0, { hasAux: true })(params);
      lossSum += l.item() * b.labels.length;
      correct += accuracy(logits, b.labels) * b.labels.length;
      seen += b.labels.length;
      total += b.labels.length;
      return opt.update(params, g, state);
    });
    dispose([params, state]);
    [params, state] = next;
    if ((seen / batchSize) % 10 === 0) {
      const s = (performance.now() - t0) / 1000;
      console.log(`epoch ${epoch + 1} step ${seen / batchSize}: loss ${(lossSum / seen).toFixed(3)}, train accuracy ${((100 * correct) / seen).toFixed(1)}%, ${(total / s).toFixed(0)} examples/s`);
    }
  }
}

let correct = 0;
for (let i = 0; i < nTest; i += 100) {
  const n = Math.min(100, nTest - i);
  const at = (nTrain + i) * 32 * 32 * 3;
  correct += scope(() => accuracy(w7Logits(params, tensor(images.subarray(at, at + n * 32 * 32 * 3), [n, 32, 32, 3]), T), all.labels.subarray(nTrain + i, nTrain + i + n))) * n;
}
const result = { testAccuracy: correct / nTest, chance: 1 / classes, seconds: (performance.now() - t0) / 1000 };
console.log(JSON.stringify(result));
