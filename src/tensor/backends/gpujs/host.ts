/**
 * The CPU kernels the gpujs backend runs for integer bookkeeping on host tensors (see
 * register.ts): elementwise ops, reductions, padding, concatenation and lookups whose tensor
 * arguments are all host tensors of integer / bool dtype.
 */
import type { Kernels } from '../../backend.js';
import { binaryCpu, castCpu, copyCpu, unaryCpu, whereCpu } from '../cpu/elementwise.js';
import { concatCpu, gatherCpu, indexSelectCpu, padCpu } from '../cpu/indexing.js';
import { argmaxCpu, reduceCpu } from '../cpu/reduce.js';

/** The kernels that may run on the host for host integer arguments. */
export const cpuKernels: Partial<Kernels> = {
  unary: unaryCpu,
  binary: binaryCpu,
  where: whereCpu,
  cast: castCpu,
  copy: copyCpu,
  reduce: reduceCpu,
  argmax: argmaxCpu,
  pad: padCpu,
  concat: concatCpu,
  indexSelect: indexSelectCpu,
  gather: gatherCpu,
};
