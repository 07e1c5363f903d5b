/** The `optimizer` procedure (AdamTrajectory cases). */
import type { GoldenCase } from '../io/golden.js';
import type { Precision, TensorReport } from './compare.js';

/** Runs an AdamTrajectory case and compares every step quantity. */
export function runOptimizerCase(c: GoldenCase, _prec: Precision): TensorReport[] {
  throw new Error(`procedure 'optimizer' (${c.module}) is not implemented yet`);
}
