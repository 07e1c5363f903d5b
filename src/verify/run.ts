/**
 * Runs one golden case (`mega-golden/1`) and compares every stored tensor: outputs, buffers,
 * gradients, incremental step outputs and states, optimizer trajectories.
 */
import { backward, mul, sum, add } from '../autograd/index.js';
import { readGoldenFile, type GoldenCase } from '../io/golden.js';
import type { Module } from '../nn/module.js';
import type { FloatDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { getAdapter, type Named } from './adapters.js';
import { compareTensor, maxAbs, type Precision, type TensorReport } from './compare.js';
import { isFloatRaw, toTensor } from './convert.js';
import { runOptimizerCase } from './optimizer.js';

/** The result of one case on one precision path. */
export interface CaseReport {
  name: string;
  precision: Precision;
  pass: boolean;
  tensors: TensorReport[];
  /** Set when the case could not run (unknown module, corrupt file, exception). */
  error?: string;
}

/** Converts a map of raw tensors; floating ones become `dtype` leaves (gradients tracked unless listed). */
export function toInputs(raw: GoldenCase['inputs'], dtype: FloatDType, noGradNames: string[] = ['attn_mask']): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  for (const [k, r] of Object.entries(raw)) {
    const t = toTensor(r, dtype);
    if (isFloatRaw(r) && !noGradNames.includes(k)) t.requiresGrad = true;
    out[k] = t;
  }
  return out;
}

/** Builds the case's module in `dtype` with its parameters loaded and its mode set. */
export function buildCase(c: GoldenCase, dtype: FloatDType): Module {
  const adapter = getAdapter(c.module);
  if (!adapter) throw new Error(`unknown module '${c.module}'`);
  const m = adapter.build(c, dtype);
  const sd = Object.fromEntries(Object.entries(c.params).map(([k, r]) => [k, toTensor(r, dtype)]));
  m.loadStateDict(sd);
  m.train(c.mode === 'train');
  return m;
}

/** Compares `got` against every tensor of `ref`. */
function compareAll(
  prefix: string,
  got: Named,
  ref: GoldenCase['outputs'],
  prec: Precision,
  opts: { atolScale?: number; absentOk?: boolean } = {},
): TensorReport[] {
  const reps = Object.entries(ref).map(([k, r]) => compareTensor(prefix + k, got[k], r, prec, opts));
  if (opts.absentOk === false) {
    for (const [k, t] of Object.entries(got)) {
      if (k.startsWith('state:') && !(k in ref) && t && t.size > 0) {
        reps.push({ name: prefix + k, pass: false, maxErr: Infinity, scale: 0, tol: 0, note: 'present, but the reference deleted it at this step' });
      }
    }
  }
  return reps;
}

function forwardCase(c: GoldenCase, prec: Precision): TensorReport[] {
  const dtype: FloatDType = prec;
  const adapter = getAdapter(c.module)!;
  const m = buildCase(c, dtype);
  const inputs = toInputs(c.inputs, dtype);
  const outs = adapter.forward(m, inputs, c);
  const buffers = Object.fromEntries(m.namedBuffers().map(([k, t]) => [`buffer:${k}`, t]));
  const reports = compareAll('outputs.', { ...outs, ...buffers }, c.outputs, prec);
  if (!c.grads) return reports;
  let loss: Tensor | null = null;
  if (c.cotangent && Object.keys(c.cotangent).length) {
    for (const [k, r] of Object.entries(c.cotangent)) {
      const o = outs[k];
      if (!o) throw new Error(`output '${k}' with a cotangent was not produced`);
      const term = sum(mul(o, toTensor(r, dtype)));
      loss = loss ? add(loss, term) : term;
    }
  } else loss = outs.loss ?? null;
  if (!loss) throw new Error('no loss: neither cotangents nor a loss output');
  backward(loss);
  const params = new Map(m.namedParameters());
  const got: Named = {};
  for (const k of Object.keys(c.grads)) {
    const t = params.get(k) ?? inputs[k];
    got[k] = t ? (t.grad ?? zerosLike(t)) : null;
  }
  const S = Math.max(...Object.values(c.grads).map((r) => maxAbs(r.data)));
  return reports.concat(compareAll('grads.', got, c.grads, prec, { atolScale: prec === 'f32' ? Math.max(1, S) : 1 }));
}

function zerosLike(t: Tensor): Tensor {
  return mul(t, 0);
}

function incrementalCase(c: GoldenCase, prec: Precision): TensorReport[] {
  const dtype: FloatDType = prec;
  const adapter = getAdapter(c.module)!;
  if (!adapter.incremental) throw new Error(`module '${c.module}' has no incremental procedure`);
  const full = buildCase(c, dtype);
  const inputs = toInputs(c.inputs, dtype, Object.keys(c.inputs));
  const reports = compareAll('outputs.', adapter.forward(full, inputs, c), c.outputs, prec);
  const m = buildCase(c, dtype);
  const steps = (c.steps ?? []).map((s) => toInputs(s.inputs, dtype, Object.keys(s.inputs)));
  const got = adapter.incremental(m, inputs, steps, c);
  (c.steps ?? []).forEach((s, i) => reports.push(...compareAll(`steps.${i}.`, got[i] ?? {}, s.outputs, prec, { absentOk: false })));
  return reports;
}

/** Every tensor map of a case (params, inputs, outputs, cotangent, grads, steps). */
function allTensors(c: GoldenCase): GoldenCase['outputs'][] {
  return [c.params, c.inputs, c.outputs, c.cotangent ?? {}, c.grads ?? {}, ...(c.steps ?? []).flatMap((s) => [s.inputs, s.outputs])];
}

/**
 * Refuses sizes in `config` / `options` that no stored tensor could justify, before anything is
 * built from them (a `max_positions` of 1e9 would allocate gigabytes of tables): every integer
 * option that sizes an allocation (dimensions, positions, lengths, layers, classes, vocabulary) must be at
 * most 4 × max(1024, the largest dimension of any stored tensor). Other integers of a fairseq
 * namespace (`max_update`, `all_gather_list_size`, ...) allocate nothing and are not bounded.
 */
const SIZE_KEY = /_dim$|dim_|positions|layers|classes|vocab|len/;

function checkSizes(c: GoldenCase): void {
  let largest = 0;
  for (const m of allTensors(c)) for (const t of Object.values(m)) for (const d of t.shape) largest = Math.max(largest, d);
  const limit = 4 * Math.max(1024, largest);
  for (const [where, map] of [
    ['config', c.config],
    ['options', c.options],
  ] as const) {
    for (const [k, v] of Object.entries(map)) {
      if (SIZE_KEY.test(k) && typeof v === 'number' && Number.isInteger(v) && Math.abs(v) > limit) {
        throw new Error(
          `${where}.${k} = ${v} is larger than any size this case can use (at most ${limit}: 4 x max(1024, the largest stored dimension ${largest}))`,
        );
      }
    }
  }
}

/** Runs a decoded case on one precision path; never throws. */
export function runCase(c: GoldenCase, prec: Precision): CaseReport {
  try {
    if (Object.keys(c.outputs).length === 0) throw new Error('the case stores no outputs: nothing to compare');
    if (c.procedure !== 'forward' && !c.steps?.length) throw new Error(`a ${c.procedure} case without steps: nothing to compare`);
    checkSizes(c);
    let tensors: TensorReport[];
    if (c.procedure === 'optimizer') tensors = runOptimizerCase(c, prec);
    else {
      if (!getAdapter(c.module)) throw new Error(`unknown module '${c.module}'`);
      tensors = c.procedure === 'incremental' ? incrementalCase(c, prec) : forwardCase(c, prec);
    }
    return { name: c.case, precision: prec, pass: tensors.length > 0 && tensors.every((t) => t.pass), tensors };
  } catch (e) {
    return { name: c.case, precision: prec, pass: false, tensors: [], error: (e as Error).message };
  }
}

/** Reads and runs a golden file; a corrupt file is a failed report, not an exception. */
export function runFile(path: string, prec: Precision): CaseReport {
  let c: GoldenCase;
  try {
    c = readGoldenFile(path);
  } catch (e) {
    return { name: path, precision: prec, pass: false, tensors: [], error: (e as Error).message };
  }
  return runCase(c, prec);
}
