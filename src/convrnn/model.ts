/**
 * A ConvRNN classifier as a Model (../nn/model.ts), the trainer's entry
 * point, from one JSON-able config:
 *
 *   {
 *     network:   a network config (./network.ts: layers, feedback, wiring, head, decoder),
 *     T:         steps to unroll, ≥ 1,
 *     imageOff?: the image is shown for steps t < imageOff, then mean gray; 0 ≤ imageOff ≤ T, default T,
 *     gray?:     the mean-gray value, a number or one per channel; default 0.5,
 *     inputSize?: when given, the data's images must be inputSize x inputSize,
 *   }
 *
 * network.head.classes may be left out: the data's number of classes fills
 * it in; when given it must agree with the data.
 *
 * The loss unrolls the network on the stimulus schedule, decodes, and takes
 * the decoder's loss (./decoders.ts: the decoded logits' cross-entropy, or
 * for zhang2021's late-avg and 2-avg the mean of the per-step losses). Only
 * the layer steps that reach the decoded logits are computed.
 */
import { Tensor, checkTensor, scope } from '../tensor/tensor.js';
import { ConfigError, ShapeError, ValueError, describe } from '../tensor/errors.js';
import { ConfigReader, type Json } from '../nn/config.js';
import type { LossContext, Model } from '../nn/model.js';
import { countParams } from '../nn/tree.js';
import { Key, key } from '../tensor/random.js';
import { makeNetwork, unrollDecoded, type Network, type NetworkBuffers, type NetworkConfig, type NetworkParams } from './network.js';
import { stimulusSchedule } from './schedule.js';
import { decoderLoss } from './decoders.js';

export { countParams };

export interface ModelConfig {
  network: NetworkConfig;
  T: number;
  imageOff: number;
  gray: number | number[];
  inputSize?: number;
}

const FN = 'buildModel';

/**
 * Validate a model config (ConfigError naming the field), defaults filled
 * in; `classes`, when given, fills or checks network.head.classes.
 */
export function readModelConfig(config: unknown, classes?: number): { config: ModelConfig; network: Network } {
  const r = ConfigReader.of(FN, config).only(['network', 'T', 'imageOff', 'gray', 'inputSize']);
  const T = r.posInt('T');
  const imageOff = r.int('imageOff', T, 0, T);
  const grayRaw = r.obj.gray ?? 0.5;
  const finite = (g: unknown): g is number => typeof g === 'number' && Number.isFinite(g);
  const gray = Array.isArray(grayRaw) ? grayRaw.slice() : grayRaw;
  if (Array.isArray(gray) ? !(gray.length > 0 && gray.every(finite)) : !finite(gray)) {
    r.fail('gray', 'a finite number or a non-empty array of them (one per channel)');
  }
  const inputSize = r.has('inputSize') ? r.posInt('inputSize') : undefined;
  let rawNet = ConfigReader.of(FN, r.obj.network, 'config.network').obj;
  if (classes !== undefined) {
    const head = ConfigReader.of(FN, rawNet.head, 'config.network.head');
    if (head.has('classes')) {
      if (head.obj.classes !== classes) head.fail('classes', `${classes}, the data's number of classes`);
    } else rawNet = { ...rawNet, head: { ...head.obj, classes } };
  }
  const network = makeNetwork(rawNet, 'config.network');
  const out: ModelConfig = { network: network.config, T, imageOff, gray: gray as number | number[] };
  if (inputSize !== undefined) out.inputSize = inputSize;
  return { config: out, network };
}

/** readModelConfig's normalised config alone: what the zoo returns. */
export function validateModelConfig(config: unknown): ModelConfig {
  return readModelConfig(config).config;
}

export interface ConvrnnModel extends Model<NetworkParams, NetworkBuffers> {
  readonly config: ModelConfig & Readonly<Record<string, unknown>>;
  readonly network: Network;
}

/** What a model needs to know of its data. */
export interface ModelData {
  inputShape: readonly [number, number, number];
  classes: number;
  /**
   * The per-channel normalisation (x - mean) / std applied to the images, if
   * any: `gray` is in raw image units, so the mean-gray stimulus goes through
   * the same map.
   */
  normalize?: { mean: readonly number[]; std: readonly number[] };
}

/** The trainer's Model for `config` on data of `inputShape` [H, W, C] and `classes` categories. */
export function buildModel(config: unknown, data: ModelData): ConvrnnModel {
  if (typeof data !== 'object' || data === null) throw new ValueError(`${FN}: data must be { inputShape: [H, W, C], classes }, got ${describe(data)}`);
  const { inputShape, classes } = data;
  if (!Array.isArray(inputShape) || inputShape.length !== 3 || !inputShape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ValueError(`${FN}: data.inputShape must be [H, W, C] of positive integers, got ${describe(inputShape)}`);
  }
  if (!Number.isInteger(classes) || classes < 2) throw new ValueError(`${FN}: data.classes must be an integer ≥ 2, got ${describe(classes)}`);
  const { config: cfg, network } = readModelConfig(config, classes);
  const [H, W, C] = inputShape;
  if (cfg.inputSize !== undefined && (H !== cfg.inputSize || W !== cfg.inputSize)) {
    throw new ConfigError(`${FN}: config.inputSize is ${cfg.inputSize} but the data's images are ${H}x${W}`);
  }
  if (Array.isArray(cfg.gray) && cfg.gray.length !== C) {
    throw new ConfigError(`${FN}: config.gray must have one value per channel (${C}), got ${cfg.gray.length}`);
  }
  const shape1 = [1, H, W, C];
  network.shapes(shape1); // a network that does not fit the images fails here, not at the first batch
  const schedule = { T: cfg.T, imageOff: cfg.imageOff, gray: normalizedGray(cfg.gray, C, data.normalize) };
  return {
    config: cfg as ModelConfig & Readonly<Record<string, unknown>>,
    network,
    inputShape: [H, W, C],
    classes,
    init(k: Key) {
      if (!(k instanceof Key)) throw new ValueError(`${FN}.init: key must be a Key, got ${describe(k)}`);
      return { params: network.init(k, shape1), buffers: network.initBuffers(shape1) };
    },
    loss(params: NetworkParams, buffers: NetworkBuffers, images: Tensor, labels: Int32Array, ctx: LossContext) {
      const fn = `${FN}.loss`;
      checkTensor(fn, 'images', images);
      if (images.rank !== 4 || images.shape[1] !== H || images.shape[2] !== W || images.shape[3] !== C) {
        throw new ShapeError(`${fn}: images must be [N, ${H}, ${W}, ${C}], got [${images.shape.join(', ')}]`);
      }
      if (typeof ctx !== 'object' || ctx === null || typeof ctx.training !== 'boolean') {
        throw new ValueError(`${fn}: ctx must be { training: boolean, key }, got ${describe(ctx)}`);
      }
      const stimulus = stimulusSchedule(images, schedule);
      const run = unrollDecoded(network, params, stimulus, cfg.T, { training: ctx.training, buffers });
      const loss = decoderLoss(cfg.network.decoder, run.decoded, labels);
      return { loss, logits: run.decoded.logits, buffers: ctx.training ? run.buffers : buffers };
    },
  };
}

function normalizedGray(gray: number | number[], channels: number, norm: ModelData['normalize']): number | number[] {
  if (norm === undefined) return gray;
  const { mean, std } = norm;
  const ok = (v: readonly number[]) => Array.isArray(v) && v.length === channels && v.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (!ok(mean) || !ok(std) || std.some((x) => x === 0)) {
    throw new ValueError(`${FN}: data.normalize must be { mean, std } with ${channels} finite values each (std nonzero), got ${describe(norm)}`);
  }
  return Array.from({ length: channels }, (_, c) => ((Array.isArray(gray) ? gray[c] : gray) - mean[c]) / std[c]);
}

/**
 * The network's size in units: the number of values in every layer's output
 * for one image, Σ_ℓ H_ℓ·W_ℓ·C_ℓ, plus the logits, as nayebi2022 counts it
 * ("unit counts (total number of neurons in the output of each layer)",
 * Fig. 2 caption; §2.4 compares performance with unit and parameter counts).
 * Cell states are not outputs and are not counted. inputShape is [H, W, C].
 */
export function countUnits(network: Network, inputShape: readonly number[]): number {
  const fn = 'countUnits';
  if (typeof network !== 'object' || network === null || network.kind !== 'network') {
    throw new ValueError(`${fn}: network must be a network from makeNetwork, got ${describe(network)}`);
  }
  if (!Array.isArray(inputShape) || inputShape.length !== 3) throw new ShapeError(`${fn}: inputShape must be [H, W, C], got ${describe(inputShape)}`);
  const layers = network.shapes([1, ...inputShape]);
  return layers.reduce((n, l) => n + l.output[1] * l.output[2] * l.output[3], 0) + network.config.head.classes;
}

/** countParams of a freshly initialised model for `config` on `data` (its tensors are freed). */
export function modelParamCount(config: unknown, data: { inputShape: readonly [number, number, number]; classes: number }): number {
  const model = buildModel(config, data);
  return scope(() => countParams(model.init(key(0)).params));
}

export type { Json };
