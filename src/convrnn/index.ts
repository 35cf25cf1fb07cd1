/**
 * convrnn: cells, networks with feedback and conduction delays, unrolling,
 * decoders, stimulus schedules and the papers' model zoo.
 */
export type { Cell, StepContext } from './cell.js';
export {
  makeCell, CELL_KINDS, timeDecay, simpleRnn, gru, lstm, ugrnn, intersectionRnn, reciprocalGated, rgcSearch, rcpb, cellConv, cellConvInit,
  type CellConvSpec, type CellConvParams,
} from './cells/index.js';
export {
  makeNetwork, unroll, unrollDecoded, neededSteps, ACTIVATIONS,
  type Network, type NetworkConfig, type LayerConfig, type OpConfig, type FeedbackEdge, type FeedbackEntry, type HeadConfig, type CellConfig,
  type NetworkParams, type NetworkBuffers, type NetworkState, type LayerParams, type LayerBuffers, type LayerState, type LayerShapes, type HeadParams,
  type UnrollOptions, type UnrollResult, type DecodedUnroll, type Activation,
} from './network.js';
export { stimulusSchedule, minimalUnroll, arrivalTimes, cellDepth, SCHEDULES, type ScheduleConfig, type Arrival } from './schedule.js';
export {
  DECODERS, DECODER_KINDS, decode, decoderLoss, decoderInit, readDecoderConfig, readsEveryStep, thresholdSteps, maxConfidenceSteps, pickSteps,
  type DecoderKind, type DecoderRule, type DecoderConfig, type DecoderParams, type Decoded,
} from './decoders.js';
export { buildModel, readModelConfig, validateModelConfig, countUnits, countParams, modelParamCount, type ModelConfig, type ConvrnnModel } from './model.js';
export { baseNet6, baseNet11, ffWider, ffDeeper, zhang, matchFeedforward, type ZooOptions, type ConvRnnOptions, type ZhangOptions, type MatchedControl } from './zoo.js';
