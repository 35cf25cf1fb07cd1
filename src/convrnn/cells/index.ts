/**
 * The cell registry: a cell config is data, `{ kind, ...fields }`, and
 * `makeCell` builds the cell of that kind from the remaining fields (each
 * factory validates its own fields). The kinds are the cells of nayebi2022
 * §A.3 (time decay, SimpleRNN, GRU, LSTM, UGRNN, IntersectionRNN, RGC), the
 * RGC search space (§A.4.2) and zhang2021's RCPB (eq. 2i).
 */
import { ConfigError, describe } from '../../tensor/errors.js';
import type { Cell } from '../cell.js';
import { timeDecay } from './timedecay.js';
import { simpleRnn } from './simplernn.js';
import { gru } from './gru.js';
import { lstm } from './lstm.js';
import { ugrnn } from './ugrnn.js';
import { intersectionRnn } from './intersection.js';
import { reciprocalGated } from './rgc.js';
import { rgcSearch } from './rgcsearch.js';
import { rcpb } from './rcpb.js';

type Factory = (config: Readonly<Record<string, unknown>>) => Cell;

const FACTORIES: Readonly<Record<string, Factory>> = {
  timeDecay: (c) => timeDecay(c) as Cell,
  simpleRnn: (c) => simpleRnn(c) as Cell,
  gru: (c) => gru(c) as Cell,
  lstm: (c) => lstm(c) as Cell,
  ugrnn: (c) => ugrnn(c) as Cell,
  intersectionRnn: (c) => intersectionRnn(c) as Cell,
  rgc: (c) => reciprocalGated(c) as Cell,
  rgcSearch: (c) => rgcSearch(c) as Cell,
  rcpb: (c) => rcpb(c as never) as Cell,
};

/** The cell kinds `makeCell` knows, in a stable order. */
export const CELL_KINDS: readonly string[] = Object.keys(FACTORIES);

/**
 * The cell of `config.kind`, built from the other fields of `config`.
 * ConfigError when config is not an object, kind is not one of CELL_KINDS, or
 * the factory rejects a field (its message names the field).
 */
export function makeCell(config: { kind: string; [field: string]: unknown }): Cell {
  if (typeof config !== 'object' || config === null || Array.isArray(config)) {
    throw new ConfigError(`makeCell: config must be an object { kind, ... }, got ${describe(config)}`);
  }
  const { kind, ...fields } = config;
  const factory = typeof kind === 'string' && Object.hasOwn(FACTORIES, kind) ? FACTORIES[kind] : undefined;
  if (factory === undefined) {
    throw new ConfigError(`makeCell: config.kind must be one of ${CELL_KINDS.map((k) => `'${k}'`).join(', ')}, got ${describe(kind)}`);
  }
  return factory(fields);
}

export { timeDecay, simpleRnn, gru, lstm, ugrnn, intersectionRnn, reciprocalGated, rgcSearch, rcpb };
export { cellConv, cellConvInit, type CellConvSpec, type CellConvParams } from './conv.js';
