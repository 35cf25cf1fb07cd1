/**
 * Every public op, given random wrong arguments, either returns a tensor or
 * throws a typed ConvrnnError: never a TypeError, a RangeError, a WASM trap or
 * a hang. Then a table of known-bad calls, each of which must throw.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import * as api from '../../src/index.js';
import { ConvrnnError, ShapeError, ValueError, Tensor, zeros, randn, key } from '../../src/index.js';
import { describe as describeValue } from '../../src/tensor/errors.js';

type Op = (...args: any[]) => unknown;

// The ops and how many positional arguments each takes (tensors or options).
const OPS: Record<string, number> = {
  exp: 1, log: 1, sigmoid: 1, tanh: 1, elu: 1, relu: 1, softplus: 1, sqrt: 1, neg: 1, abs: 1, square: 1, reciprocal: 1,
  add: 2, sub: 2, mul: 2, div: 2, maximum: 2, minimum: 2, pow: 2,
  sum: 3, max: 3, min: 3, mean: 3, softmax: 2, logSoftmax: 2,
  reshape: 2, broadcastTo: 2, expandDims: 2, squeeze: 2,
  equal: 2, greater: 2, greaterEqual: 2, less: 2, where: 3, argmax: 2, oneHot: 2,
  transpose: 2, concat: 2, slice: 3, pad: 3, stack: 2, unstack: 2,
  gateBlend: 4, reciprocalGate: 4, sigmoidGate: 2, lstmState: 4, lstmOutput: 2, gruState: 3,
  matmul: 3, conv2d: 3, conv2dBackpropInput: 4, conv2dBackpropFilter: 4, depthwiseConv2d: 3,
  maxPool: 2, avgPool: 2, resizeBilinear: 3,
  tensor: 2, full: 2, zeros: 1, ones: 1, randn: 3, uniform: 4, key: 1, split: 2, foldIn: 2,
};

const disposed = (() => {
  const t = zeros([2, 2]);
  t.dispose();
  return t;
})();

const anyShape = fc.array(fc.integer({ min: 0, max: 4 }), { minLength: 0, maxLength: 5 });
const tensorArb = anyShape.map((s) => zeros(s));
const badScalar = fc.constantFrom<unknown>(NaN, -1, 0, 1.5, Infinity, -Infinity, 7, 2 ** 40);
const junk = fc.constantFrom<unknown>(undefined, null, 'same', 'nope', {}, [], [1, -1], [[1, 2]], true, () => 0, disposed);
const options = fc.record(
  {
    stride: fc.oneof(badScalar, fc.constant([1, 0])),
    padding: fc.oneof(fc.constantFrom('same', 'valid', 'bogus', -2, [[1, 2]]), badScalar),
    dilation: badScalar,
    size: fc.oneof(badScalar, fc.constant([2, 0])),
    bias: fc.oneof(tensorArb, junk),
    axis: badScalar,
    transA: fc.constantFrom<unknown>(true, 'yes'),
  },
  { requiredKeys: [] },
);
const argArb = fc.oneof(
  { weight: 4, arbitrary: tensorArb },
  { weight: 2, arbitrary: badScalar },
  { weight: 2, arbitrary: junk },
  { weight: 2, arbitrary: options },
  { weight: 1, arbitrary: anyShape },
  { weight: 1, arbitrary: fc.array(tensorArb, { maxLength: 3 }) },
);

describe('every public op answers wrong arguments with a typed error', () => {
  for (const [name, arity] of Object.entries(OPS)) {
    it(name, () => {
      const op = (api as unknown as Record<string, Op>)[name];
      expect(typeof op).toBe('function');
      fc.assert(
        fc.property(fc.array(argArb, { minLength: 0, maxLength: arity + 1 }), (args) => {
          api.scope(() => {
            try {
              op(...args);
            } catch (e) {
              if (!(e instanceof ConvrnnError)) {
                throw new Error(`${name}(${args.map((a) => describeValue(a)).join(', ')}) threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
              }
            }
          });
        }),
        { numRuns: 60, seed: 42 },
      );
    });
  }
});

describe('known-bad calls throw typed errors naming the argument', () => {
  const x = randn(key(1), [2, 8, 8, 4]);
  const cases: [string, () => unknown, typeof ConvrnnError, RegExp][] = [
    ['conv2d Cin mismatch', () => api.conv2d(x, zeros([3, 3, 5, 2])), ShapeError, /conv2d.*(input )?channels/i],
    ['conv2d negative stride', () => api.conv2d(x, zeros([3, 3, 4, 2]), { stride: -1 }), ValueError, /stride/],
    ['conv2d 5-D input', () => api.conv2d(zeros([1, 2, 8, 8, 4]), zeros([3, 3, 4, 2])), ShapeError, /conv2d.*x/],
    ['NaN seed', () => key(NaN), ValueError, /seed.*NaN/],
    ['add no broadcast', () => api.add(zeros([2, 3]), zeros([4])), ShapeError, /\[2, 3\].*\[4\]/],
    ['matmul inner mismatch', () => api.matmul(zeros([2, 3]), zeros([4, 5])), ShapeError, /matmul/],
    ['maxPool zero size', () => api.maxPool(x, { size: 0 }), ValueError, /size/],
    ['resize to zero', () => api.resizeBilinear(x, [0, 4]), ValueError, /resizeBilinear/],
    ['transpose duplicate axis', () => api.transpose(x, [0, 0, 1, 2]), ValueError, /perm/],
    ['slice out of bounds', () => api.slice(x, [0, 0, 0, 0], [3, 8, 8, 4]), ShapeError, /slice/],
    ['gate shape mismatch', () => api.sigmoidGate(zeros([2]), zeros([3])), ShapeError, /sigmoidGate/],
    ['reshape wrong size', () => api.reshape(x, [5, -1]), ShapeError, /reshape/],
    ['sum axis out of range', () => api.sum(x, 4), ValueError, /axis|axes/],
    ['disposed tensor', () => api.exp(disposed), ValueError, /disposed/],
    ['not a tensor', () => api.relu([1, 2] as never), ValueError, /Tensor/],
  ];
  for (const [what, call, type, message] of cases) {
    it(what, () => {
      let error: unknown = null;
      try {
        call();
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(type);
      expect((error as Error).message).toMatch(message);
    });
  }
  it('Tensor is the class every op returns', () => expect(api.exp(zeros([1]))).toBeInstanceOf(Tensor));
});
