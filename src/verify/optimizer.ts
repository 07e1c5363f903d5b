/**
 * The `optimizer` procedure (AdamTrajectory cases, FORMAT.md): the module named by
 * `config.module` is built through its golden adapter from `config.module_config`, then run as
 * `fairseq/trainer.py` does: `lr_scheduler.step_update(0)`; per step `zero_grad`, forward,
 * `loss = Σ out·G`, backward, `clip_grad_norm(clip_norm)`, `optimizer.step()`,
 * `lr_scheduler.step_update(step)`. Every stored step quantity is compared.
 */
import { add, backward, mul, noGrad, sum } from '../autograd/index.js';
import type { GoldenCase, TensorMap } from '../io/golden.js';
import { scalar } from '../tensor/create.js';
import type { FloatDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import { Adam, clipGradNorm, parseBetas } from '../train/optim.js';
import { makeScheduleFromArgs } from '../train/schedule.js';
import { getAdapter, type Named } from './adapters.js';
import { compareTensor, maxAbs, type Precision, type TensorReport } from './compare.js';
import { toTensor } from './convert.js';
import { buildCase, toInputs } from './run.js';

/** FORMAT.md: a gradient element at most this fraction of the step's grad norm is "dead". */
const DEAD_FRACTION = 1e-12;

/** Runs an AdamTrajectory case and compares every step quantity. */
export function runOptimizerCase(c: GoldenCase, prec: Precision): TensorReport[] {
  const dtype: FloatDType = prec;
  const cfg = c.config;
  const modName = cfg.module as string;
  const adapter = getAdapter(modName);
  if (!adapter) throw new Error(`optimizer case: unknown module '${modName}'`);
  const sub: GoldenCase = { ...c, module: modName, config: cfg.module_config as Record<string, unknown>, procedure: 'forward', steps: undefined };
  const m = buildCase(sub, dtype);
  const inputs = toInputs(c.inputs, dtype, Object.keys(c.inputs));
  const reports: TensorReport[] = [];

  const out0 = noGrad(() => adapter.forward(m, inputs, sub));
  for (const [k, r] of Object.entries(c.outputs)) reports.push(compareTensor(`outputs.${k}`, out0[k], r, prec));

  const G = Object.fromEntries(Object.entries(c.cotangent ?? {}).map(([k, r]) => [k, toTensor(r, dtype)]));
  const named = m.namedParameters();
  const params = m.parameters();
  const schedule = makeScheduleFromArgs(cfg);
  const opt = new Adam(params, {
    lr: schedule.lr(0),
    betas: parseBetas((cfg.adam_betas as string | undefined) ?? '(0.9, 0.999)'),
    eps: (cfg.adam_eps as number | undefined) ?? 1e-8,
    weightDecay: (cfg.weight_decay as number | undefined) ?? 0,
  });
  const clip = (cfg.clip_norm as number | undefined) ?? 0;
  const steps = c.steps ?? [];
  const nSteps = (cfg.num_steps as number | undefined) ?? steps.length;
  if (nSteps !== steps.length) throw new Error(`optimizer case: num_steps ${nSteps} but ${steps.length} stored steps`);

  // dead-coordinate bookkeeping (f32 only): per parameter, elements whose stored gradient was
  // ≤ 1e-12·grad_norm at some step so far, and the running Σ lr_s
  const dead = new Map<string, Uint8Array>();
  let lrSum = 0;

  for (let s = 0; s < nSteps; s++) {
    const ref = steps[s].outputs;
    const got: Named = {};
    const lr = opt.lr;
    opt.zeroGrad();
    const outs = adapter.forward(m, inputs, sub);
    let loss: Tensor | null = null;
    for (const [k, g] of Object.entries(G)) {
      const o = outs[k];
      if (!o) throw new Error(`output '${k}' with a cotangent was not produced`);
      const term = sum(mul(o, g));
      loss = loss ? add(loss, term) : term;
    }
    if (!loss) throw new Error('optimizer case: no cotangent');
    backward(loss);
    got.loss = loss;
    for (const [k, p] of named) got[`grad:${k}`] = p.grad ?? mul(p, 0);
    const gradNorm = clipGradNorm(params, clip);
    opt.step();
    const lrNext = schedule.lr(s + 1);
    opt.setLr(lrNext);
    got.lr = scalar(lr, 'f64');
    got.grad_norm = scalar(gradNorm, 'f64');
    got.lr_next = scalar(lrNext, 'f64');
    for (const [k, p] of named) {
      const st = opt.getState(p);
      got[`param:${k}`] = p;
      got[`exp_avg:${k}`] = st?.exp_avg;
      got[`exp_avg_sq:${k}`] = st?.exp_avg_sq;
    }

    const refLr = scalarOf(ref, 'lr', lr);
    lrSum += refLr;
    const refNorm = scalarOf(ref, 'grad_norm', gradNorm);
    if (prec === 'f32') {
      for (const [k] of named) {
        const rg = ref[`grad:${k}`];
        if (!rg) continue;
        let d = dead.get(k);
        if (!d) dead.set(k, (d = new Uint8Array(rg.data.length)));
        for (let i = 0; i < rg.data.length; i++) if (Math.abs(rg.data[i]) <= DEAD_FRACTION * refNorm) d[i] = 1;
      }
    }
    const gradNames = Object.keys(ref).filter((k) => k.startsWith('grad:'));
    const S = gradNames.length ? Math.max(...gradNames.map((k) => maxAbs(ref[k].data))) : 0;
    for (const [k, r] of Object.entries(ref)) {
      const name = `steps.${s}.${k}`;
      const colon = k.indexOf(':');
      const kind = colon < 0 ? k : k.slice(0, colon);
      const pname = k.slice(colon + 1);
      if (prec === 'f32' && kind === 'grad') {
        reports.push(compareTensor(name, got[k], r, prec, { atolScale: Math.max(1, S) }));
      } else if (prec === 'f32' && (kind === 'param' || kind === 'exp_avg' || kind === 'exp_avg_sq') && dead.has(pname)) {
        const d = dead.get(pname)!;
        const extra = 2 * lrSum;
        reports.push(compareTensor(name, got[k], r, prec, { extraAt: (i) => (d[i] ? extra : 0) }));
      } else reports.push(compareTensor(name, got[k], r, prec));
    }
  }
  return reports;
}

function scalarOf(ref: TensorMap, k: string, dflt: number): number {
  const r = ref[k];
  return r ? r.data[0] : dflt;
}
