/** Parameter initialisers (values drawn from a seeded Generator; never bit-equal to PyTorch's). */
import { full, zeros } from '../tensor/create.js';
import type { FloatDType } from '../tensor/dtype.js';
import { defaultGenerator, randNormal, randUniform, type Generator } from '../tensor/random.js';
import type { Tensor } from '../tensor/tensor.js';

/** N(mean, std²) entries. */
export function normal(shape: number[], std: number, dtype: FloatDType, gen: Generator = defaultGenerator, mean = 0): Tensor {
  return randNormal(shape, mean, std, dtype, gen);
}

/** Xavier/Glorot uniform for a `[fanOut, fanIn]` weight: U(−a, a), a = √(6/(fanIn+fanOut)). */
export function xavierUniform(shape: [number, number], dtype: FloatDType, gen: Generator = defaultGenerator): Tensor {
  const a = Math.sqrt(6 / (shape[0] + shape[1]));
  return randUniform(shape, -a, a, dtype, gen);
}

/** PyTorch's default Linear init: U(−1/√fanIn, 1/√fanIn). */
export function kaimingUniform(shape: number[], fanIn: number, dtype: FloatDType, gen: Generator = defaultGenerator): Tensor {
  const a = 1 / Math.sqrt(fanIn);
  return randUniform(shape, -a, a, dtype, gen);
}

export { full, zeros };
