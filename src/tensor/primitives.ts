/**
 * The closed set of primitives: every op that the autodiff tape can record,
 * each with its forward and vjp (see primitive.ts). Everything else is a
 * composition of these and needs no gradient code.
 */
import type { Rule } from './primitive.js';
import { rules as unary } from './ops/unary.js';
import { rules as binary } from './ops/binary.js';
import { rules as reduce } from './ops/reduce.js';
import { rules as softmax } from './ops/softmax.js';
import { rules as shape } from './ops/shape.js';
import { rules as compare } from './ops/compare.js';
import { rules as layout } from './ops/layout.js';
import { rules as gates } from './ops/gates.js';
import { rules as matmul } from './ops/matmul.js';
import { rules as conv2d } from './ops/conv2d.js';
import { rules as depthwise } from './ops/depthwise.js';
import { rules as pool } from './ops/pool.js';
import { rules as resize } from './ops/resize.js';

/** Keep only the names in the type: a rule's params type is its op file's business. */
const named = <T extends Record<string, Rule<any>>>(rules: T): Record<keyof T & string, Rule<any>> => rules;

const table = {
  ...named(unary), ...named(binary), ...named(reduce), ...named(softmax), ...named(shape), ...named(compare),
  ...named(layout), ...named(gates), ...named(matmul), ...named(conv2d), ...named(depthwise), ...named(pool),
  ...named(resize),
};

export type Primitive = keyof typeof table;
export const primitives: Readonly<Record<Primitive, Rule<any>>> = table;
