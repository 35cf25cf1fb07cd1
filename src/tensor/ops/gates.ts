/**
 * Fused gate ops of the recurrent cells: one kernel forward, one kernel
 * backward that produces every input's cotangent in a single pass. Operands
 * all have one shape (no broadcasting). The sigmoid and tanh inside are the
 * kernels' own (assembly/gates.ts): a few float32 ulp from exact, no NaN from
 * finite inputs, the same bits on every CPU and thread count.
 *
 * The gates take pre-activations. Whatever comes before the nonlinearity in a
 * cell's equations (convolutions, biases, the LSTM forget bias f_b, layer
 * normalisation) is applied by the caller before these ops.
 *
 *   gateBlend(a, b, c, d)      = σ(a)·b + (1 − σ(c))·d        (W6)
 *   sigmoidGate(a, x)          = (1 − σ(a))·x
 *   reciprocalGate(a, x, c, h) = (1 − σ(a))·x + (1 − σ(c))·h
 *   lstmState(i, f, g, c)      = σ(f)·c + σ(i)·tanh(g)         (nayebi2022 eq. 6)
 *   lstmOutput(o, c)           = σ(o)·tanh(c)                  (nayebi2022 eq. 6)
 *   gruState(u, c, s)          = σ(u)·s + (1 − σ(u))·c         (nayebi2022 eq. 4)
 *
 * gateBlend and reciprocalGate take { activation: 'elu' | 'relu' }: the
 * activation of the blend, applied to the fresh output in place (see
 * FusedActivation); the reciprocal gated cell's elu runs there.
 *
 * 1 − σ(z) is computed as σ(−z), which keeps full relative accuracy where
 * σ(z) is close to 1. The reciprocal gated cell's update (nayebi2018/2022,
 * h' = f((1 − σ(conv(s)))·x + (1 − σ(conv(h)))·h)) is one reciprocalGate, and
 * reciprocalGate(a, x, c, h) = gateBlend(−a, x, c, h).
 */
import { Tensor, checkTensor, empty } from '../tensor.js';
import { parallel } from '../dispatch.js';
import { defineRule, apply, type Rule } from '../primitive.js';
import { ShapeError, ValueError, describe } from '../errors.js';
import { activateInPlace, unaryGrad, readActivation, type FusedActivation } from './unary.js';

const fmt = (s: readonly number[]): string => `[${s.join(', ')}]`;

// Rough cost per element (SIMD operations), for deciding when to shard.
const COST = 40;
// Shards in whole trips of the kernels' 16-element main loop.
const GRAIN = 16;

/** Every argument a live tensor of the first one's shape. */
function checkSame(fn: string, names: readonly string[], ts: readonly unknown[]): void {
  ts.forEach((t, i) => checkTensor(fn, names[i], t));
  const first = ts[0] as Tensor;
  ts.forEach((t, i) => {
    const s = (t as Tensor).shape;
    if (s.length !== first.rank || s.some((d, k) => d !== first.shape[k])) {
      throw new ShapeError(`${fn}: ${names[i]} has shape ${fmt(s)}, ${names[0]} has ${fmt(first.shape)}; the gate needs equal shapes`);
    }
  });
}

/** Fresh tensors shaped like `like`, one per cotangent. */
function outputs(like: Tensor, n: number): Tensor[] {
  return Array.from({ length: n }, () => empty(like.shape));
}

// ---- gateBlend / reciprocalGate ------------------------------------------------

export interface GateOptions {
  /** An activation applied to the blend in place (see FusedActivation). */
  activation?: FusedActivation;
}

/** The blends' primitive parameters. */
interface BlendParams {
  activation: FusedActivation | null;
}

/** The blend primitive; flip 1 negates a (reciprocalGate). */
function blendRule(name: 'gateBlend' | 'reciprocalGate', flip: 0 | 1): Rule<BlendParams> {
  return defineRule<BlendParams>(name, {
    forward([a, b, c, d], p) {
      const out = empty(a.shape);
      parallel('gateBlend', [a.ptr, b.ptr, c.ptr, d.ptr, out.ptr, flip], out.size, { cost: COST, grain: GRAIN });
      if (p.activation !== null) activateInPlace(p.activation, out);
      return out;
    },
    vjp(g, [a, b, c, d], y, p) {
      const dz = p.activation === null ? g : unaryGrad(p.activation, y, y, g);
      const gs = outputs(a, 4);
      parallel(
        'gateBlendBackward',
        [dz.ptr, a.ptr, b.ptr, c.ptr, d.ptr, gs[0].ptr, gs[1].ptr, gs[2].ptr, gs[3].ptr, flip],
        g.size,
        { cost: COST, grain: GRAIN },
      );
      if (dz !== g) dz.dispose();
      return gs;
    },
  });
}

const gateBlendRule = blendRule('gateBlend', 0);
const reciprocalGateRule = blendRule('reciprocalGate', 1);

function blend(rule: Rule<BlendParams>, names: readonly string[], inputs: Tensor[], opts: GateOptions): Tensor {
  const fn = rule.name;
  checkSame(fn, names, inputs);
  if (opts === null || typeof opts !== 'object') throw new ValueError(`${fn}: options must be an object, got ${describe(opts)}`);
  return apply(rule, inputs, { activation: readActivation(fn, opts.activation) });
}

/** σ(a)·b + (1 − σ(c))·d, elementwise; all four of one shape. */
export function gateBlend(a: Tensor, b: Tensor, c: Tensor, d: Tensor, opts: GateOptions = {}): Tensor {
  return blend(gateBlendRule, ['a', 'b', 'c', 'd'], [a, b, c, d], opts);
}

/**
 * (1 − σ(a))·x + (1 − σ(c))·h, elementwise: the reciprocal gated cell's
 * gating of its input x and its own state h in one kernel
 * (= gateBlend(−a, x, c, h)).
 */
export function reciprocalGate(a: Tensor, x: Tensor, c: Tensor, h: Tensor, opts: GateOptions = {}): Tensor {
  return blend(reciprocalGateRule, ['a', 'x', 'c', 'h'], [a, x, c, h], opts);
}

// ---- sigmoidGate ------------------------------------------------------------------

const sigmoidGateRule = defineRule('sigmoidGate', {
  forward([a, x]) {
    const out = empty(a.shape);
    parallel('gateSigmoid', [a.ptr, x.ptr, out.ptr], out.size, { cost: COST / 2, grain: GRAIN });
    return out;
  },
  vjp(g, [a, x]) {
    const [ga, gx] = outputs(a, 2);
    parallel('gateSigmoidBackward', [g.ptr, a.ptr, x.ptr, ga.ptr, gx.ptr], g.size, { cost: COST / 2, grain: GRAIN });
    return [ga, gx];
  },
});

/** (1 − σ(a))·x, elementwise; a and x of one shape. */
export function sigmoidGate(a: Tensor, x: Tensor): Tensor {
  checkSame('sigmoidGate', ['a', 'x'], [a, x]);
  return apply(sigmoidGateRule, [a, x], undefined);
}

// ---- LSTM ---------------------------------------------------------------------------

const lstmStateRule = defineRule('lstmState', {
  forward([i, f, g, c]) {
    const out = empty(c.shape);
    parallel('lstmState', [i.ptr, f.ptr, g.ptr, c.ptr, out.ptr], out.size, { cost: 2 * COST, grain: GRAIN });
    return out;
  },
  vjp(G, [i, f, g, c]) {
    const gs = outputs(c, 4);
    parallel(
      'lstmStateBackward',
      [G.ptr, i.ptr, f.ptr, g.ptr, c.ptr, gs[0].ptr, gs[1].ptr, gs[2].ptr, gs[3].ptr],
      G.size,
      { cost: 2 * COST, grain: GRAIN },
    );
    return gs;
  },
});

/**
 * The LSTM's new cell state, nayebi2022 eq. 6 without its layer norm:
 * c' = σ(f)·c + σ(i)·tanh(g), from the gate pre-activations i (input),
 * f (forget, with the forget bias f_b already added) and g (the candidate,
 * the paper's j) and the old cell state c.
 */
export function lstmState(i: Tensor, f: Tensor, g: Tensor, c: Tensor): Tensor {
  checkSame('lstmState', ['i', 'f', 'g', 'c'], [i, f, g, c]);
  return apply(lstmStateRule, [i, f, g, c], undefined);
}

const lstmOutputRule = defineRule('lstmOutput', {
  forward([o, c]) {
    const out = empty(c.shape);
    parallel('lstmOutput', [o.ptr, c.ptr, out.ptr], out.size, { cost: COST, grain: GRAIN });
    return out;
  },
  vjp(G, [o, c]) {
    const [go, gc] = outputs(c, 2);
    parallel('lstmOutputBackward', [G.ptr, o.ptr, c.ptr, go.ptr, gc.ptr], G.size, { cost: COST, grain: GRAIN });
    return [go, gc];
  },
});

/** The LSTM's output h = σ(o)·tanh(c) (nayebi2022 eq. 6), o the output gate's pre-activation, c the (normalised) new cell state. */
export function lstmOutput(o: Tensor, c: Tensor): Tensor {
  checkSame('lstmOutput', ['o', 'c'], [o, c]);
  return apply(lstmOutputRule, [o, c], undefined);
}

/**
 * One LSTM update without layer norm: c' = lstmState(i, f, g, c) and
 * h = lstmOutput(o, c'). A cell with the paper's layer norm on the state
 * calls the two ops with LN in between.
 */
export function lstmCell(i: Tensor, f: Tensor, g: Tensor, o: Tensor, c: Tensor): { c: Tensor; h: Tensor } {
  checkSame('lstmCell', ['i', 'f', 'g', 'o', 'c'], [i, f, g, o, c]);
  const cNew = lstmState(i, f, g, c);
  return { c: cNew, h: lstmOutput(o, cNew) };
}

// ---- GRU ------------------------------------------------------------------------------

const gruStateRule = defineRule('gruState', {
  forward([u, c, s]) {
    const out = empty(s.shape);
    parallel('gruState', [u.ptr, c.ptr, s.ptr, out.ptr], out.size, { cost: COST / 2, grain: GRAIN });
    return out;
  },
  vjp(G, [u, c, s]) {
    const [gu, gc, gs] = outputs(s, 3);
    parallel('gruStateBackward', [G.ptr, u.ptr, c.ptr, s.ptr, gu.ptr, gc.ptr, gs.ptr], G.size, { cost: COST / 2, grain: GRAIN });
    return [gu, gc, gs];
  },
});

/**
 * The GRU's state update as nayebi2022 eq. 4 writes it,
 * s_t = u_t∘s_{t−1} + (1 − u_t)∘c_t with u_t = σ(uPre): the update gate
 * multiplies the OLD state. uPre is the update gate's pre-activation (its
 * convolutions and bias summed by the caller), c the candidate c_t (already
 * through its tanh), s the old state s_{t−1}.
 */
export function gruState(uPre: Tensor, c: Tensor, s: Tensor): Tensor {
  checkSame('gruState', ['uPre', 'c', 's'], [uPre, c, s]);
  return apply(gruStateRule, [uPre, c, s], undefined);
}

export const rules = {
  gateBlend: gateBlendRule,
  reciprocalGate: reciprocalGateRule,
  sigmoidGate: sigmoidGateRule,
  lstmState: lstmStateRule,
  lstmOutput: lstmOutputRule,
  gruState: gruStateRule,
};
