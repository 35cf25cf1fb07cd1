/**
 * The ConvRNN training-step workloads: BaseNet-6 at 1/8 width with reciprocal
 * gated cells in layers 3–5 (nayebi2022 §A.2.1, §A.3), T = 16 steps with the
 * image off after 12, batch 32, 64x64 RGB, 10 classes; one step = unroll,
 * softmax cross-entropy of the last step's logits, backward through time and
 * an SGD update (gradients clipped at 0.7), on one batch of the built-in
 * shapes (normalised). BN6D uses conduction delays (the papers), BN6S the
 * standard unrolling (every layer every step).
 */
import { key, tensor, scope, dispose, valueAndGrad, nn, baseNet6, buildModel, type NetworkParams } from '../src/index.js';
import { time, round } from './harness.js';

export function baseNetStep(wiring: 'delays' | 'standard'): Record<string, unknown> {
  const B = 32, size = 64, classes = 10;
  const config = baseNet6({ cell: 'rgc', width: 1 / 8, inputSize: size, classes, T: 16, imageOff: 12, wiring });
  const model = buildModel(config, { inputShape: [size, size, 3], classes });
  let { params, buffers } = model.init(key(0));
  const data = nn.proceduralDataset({ count: B, size, classes, variation: 'medium', seed: 1 });
  const x = tensor(nn.normalizeImages(data), data.shape);
  const labels = data.labels;
  // The papers' optimizer: SGD with momentum 0.9, lr 0.01, gradients clipped at 0.7 (nayebi2022 §A.1.3, §A.4.1).
  const opt = nn.withGradTransforms(nn.sgd({ lr: 0.01, momentum: 0.9 }), nn.clipByValue(0.7));
  let state = opt.init(params);
  const losses: number[] = [];
  const step = () => {
    const next = scope(() => {
      const [loss, g] = valueAndGrad((p: NetworkParams) => model.loss(p, buffers, x, labels, { training: true, key: key(2) }).loss)(params);
      losses.push(loss.item());
      return opt.update(params, g, state);
    });
    dispose([params, state]);
    [params, state] = next;
  };
  const m = time(step, { minSeconds: 0 });
  const paramCount = nn.countParams(params);
  dispose([params, state, buffers, x]);
  return { ...m, params: paramCount, loss_first: round(losses[0], 4), loss_last: round(losses[losses.length - 1], 4) };
}
