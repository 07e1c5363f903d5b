/**
 * fairseq learning-rate schedules (docs/MEGA.md §9.5), exact re-implementations of the reference files
 * `fairseq/optim/lr_scheduler/{linear_decay_schedule,cosine_lr_scheduler}.py` (plus fairseq's
 * `fixed` and `inverse_sqrt`).
 *
 * Convention: fairseq sets the LR at construction (`step_update(0)`) and again after every
 * optimizer update with the new update count, so **update `k` (1-based) uses `lr(k − 1)`**.
 * `lr(n)` here is a pure function of the number of updates already done.
 */

import { ConfigError } from './errors.js';

/** A learning-rate schedule: `lr(numUpdates)` is the LR for the update after `numUpdates` updates. */
export interface LRSchedule {
  /** Scheduler name (`linear_decay`, `cosine`, `fixed`, `inverse_sqrt`). */
  readonly name: string;
  /** LR to use after `numUpdates` (>= 0) optimizer updates have been done. */
  lr(numUpdates: number): number;
}

/** Peak LR as fairseq takes it: `--lr` is a list; schedules here accept exactly one value. */
export type LrValue = number | readonly number[];

/** Options of `linear_decay` (fairseq argparse names in the comments, defaults from the reference). */
export interface LinearDecayOptions {
  /** `--lr`: peak learning rate. */
  lr: LrValue;
  /** `--warmup-updates` (default 0). */
  warmupUpdates?: number;
  /** `--warmup-power` (default 1; 2 = quadratic warmup as in Path-X). */
  warmupPower?: number;
  /** `--warmup-init-lr` (default −1: replaced by `lr` without warmup, by 0 with warmup). */
  warmupInitLr?: number;
  /** `--end-learning-rate` (default 0). */
  endLearningRate?: number;
  /** `--total-num-update` (default 1 000 000). */
  totalNumUpdate?: number;
}

/** Options of `cosine` (fairseq argparse names in the comments, defaults from the reference). */
export interface CosineOptions {
  /** `--lr`: maximum learning rate. */
  lr: LrValue;
  /** `--min-lr` (default 0; negative values count as 0). */
  minLr?: number;
  /** `--warmup-init-lr` (default −1: replaced by the min LR). */
  warmupInitLr?: number;
  /** `--warmup-updates` (default 0). */
  warmupUpdates?: number;
  /** `--t-mult` (default 1): factor by which each period grows. */
  tMult?: number;
  /** `--lr-period-updates` (default −1: becomes `maxUpdate − warmupUpdates`). */
  lrPeriodUpdates?: number;
  /** `--lr-shrink` (default 0.1): factor applied to min/max LR after each period. */
  lrShrink?: number;
  /** `--max-update` (needed when `lrPeriodUpdates <= 0`). */
  maxUpdate?: number;
}

/** Options of `fixed`: constant `lr` with fairseq's `(n+1)/W` warmup factor for `n < W`. */
export interface FixedOptions {
  /** `--lr` (a single value; per-epoch lists are not supported). */
  lr: LrValue;
  /** `--warmup-updates` (default 0). */
  warmupUpdates?: number;
}

/** Options of `inverse_sqrt` (fairseq defaults: warmup 4000, warmup-init-lr −1 → 0). */
export interface InverseSqrtOptions {
  /** `--lr`: LR reached at the end of warmup. */
  lr: LrValue;
  /** `--warmup-updates` (default 4000, must be > 0). */
  warmupUpdates?: number;
  /** `--warmup-init-lr` (default −1: 0). */
  warmupInitLr?: number;
}

/** Schedule names accepted by {@link makeSchedule}, with their option types. */
export interface ScheduleOptionsByName {
  linear_decay: LinearDecayOptions;
  cosine: CosineOptions;
  fixed: FixedOptions;
  inverse_sqrt: InverseSqrtOptions;
}

/** Name of a supported schedule. */
export type ScheduleName = keyof ScheduleOptionsByName;

function num(name: string, v: unknown, dflt: number): number {
  if (v === undefined || v === null) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v)) {
    throw new ConfigError(`--${name} = ${String(v)}: expected a finite number`);
  }
  return v;
}

function int(name: string, v: unknown, dflt: number): number {
  const x = num(name, v, dflt);
  if (!Number.isInteger(x)) throw new ConfigError(`--${name} = ${x}: expected an integer`);
  return x;
}

function peakLr(schedule: string, lr: unknown): number {
  const list = Array.isArray(lr) ? (lr as unknown[]) : [lr];
  if (list.length !== 1) {
    throw new ConfigError(`--lr = [${list.join(', ')}]: ${schedule} expects exactly one learning rate (use fixed for per-epoch lists)`);
  }
  const v = list[0];
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
    throw new ConfigError(`--lr = ${String(v)}: ${schedule} expects a finite learning rate >= 0`);
  }
  return v;
}

function checkUpdates(n: number): void {
  if (!(n >= 0)) throw new ConfigError(`lr(numUpdates = ${n}): expected a number of updates >= 0`);
}

/**
 * `linear_decay` (docs/MEGA.md §9.5): warmup `lr_0 + n^P·a` for `n <= W`, then linear decay
 * `c·(T − n) + lr_end` down to `lr_end` at `n >= T`.
 * @throws ConfigError for a negative warmup, `warmup_init_lr >= 0` without warmup,
 *   `warmup_init_lr >= lr` with warmup, or `total_num_update == warmup_updates`
 */
export function linearDecaySchedule(opts: LinearDecayOptions): LRSchedule {
  const lrMax = peakLr('linear_decay', opts.lr);
  const W = int('warmup-updates', opts.warmupUpdates, 0);
  let P = num('warmup-power', opts.warmupPower, 1);
  let lr0 = num('warmup-init-lr', opts.warmupInitLr, -1);
  const lrEnd = num('end-learning-rate', opts.endLearningRate, 0);
  const T = num('total-num-update', opts.totalNumUpdate, 1000000);
  if (W < 0) throw new ConfigError(`--warmup-updates = ${W}: expected >= 0`);
  if (W === 0) {
    if (!(lr0 < 0)) {
      throw new ConfigError(`--warmup-init-lr = ${lr0} with --warmup-updates 0: expected a negative value (unset)`);
    }
    lr0 = lrMax;
  } else {
    if (!(lr0 < lrMax)) {
      throw new ConfigError(`--warmup-init-lr = ${lr0}: expected < --lr = ${lrMax} when --warmup-updates > 0`);
    }
    if (lr0 < 0) lr0 = 0;
    if (!(P > 0)) throw new ConfigError(`--warmup-power = ${P}: expected > 0`);
  }
  if (T === W) {
    throw new ConfigError(`--total-num-update = ${T}: must differ from --warmup-updates (decay slope divides by T − W)`);
  }
  let a = 0;
  if (W > 0) a = (lrMax - lr0) / W ** P;
  else P = 1;
  const c = (lrMax - lrEnd) / (T - W);
  return {
    name: 'linear_decay',
    lr(n: number): number {
      checkUpdates(n);
      if (n <= W) return lr0 + n ** P * a;
      if (n >= T) return lrEnd;
      return c * (T - n) + lrEnd;
    },
  };
}

/**
 * `cosine` (docs/MEGA.md §9.5, SGDR with linear warmup): warmup `lr_0 + n·step` for `n < W`, then cosine
 * annealing between `min·s` and `max·s` (`s = shrink^i`) over periods that grow by `t_mult`.
 * @throws ConfigError when `lr <= max(0, min_lr)`, `t_mult <= 0`, or the period is not positive
 */
export function cosineSchedule(opts: CosineOptions): LRSchedule {
  const maxLr = peakLr('cosine', opts.lr);
  const minLr = Math.max(0, num('min-lr', opts.minLr, 0));
  if (!(maxLr > minLr)) throw new ConfigError(`--lr = ${maxLr}: expected > --min-lr = ${minLr} for cosine`);
  let lr0 = num('warmup-init-lr', opts.warmupInitLr, -1);
  if (lr0 < 0) lr0 = minLr;
  const W = int('warmup-updates', opts.warmupUpdates, 0);
  if (W < 0) throw new ConfigError(`--warmup-updates = ${W}: expected >= 0`);
  const tMult = num('t-mult', opts.tMult, 1);
  if (!(tMult > 0)) throw new ConfigError(`--t-mult = ${tMult}: expected > 0`);
  let period = num('lr-period-updates', opts.lrPeriodUpdates, -1);
  if (period <= 0) {
    const maxUpdate = num('max-update', opts.maxUpdate, 0);
    period = maxUpdate - W;
    if (!(period > 0)) {
      throw new ConfigError(`--max-update = ${maxUpdate}: expected > --warmup-updates = ${W} when --lr-period-updates is unset`);
    }
  }
  const shrink = num('lr-shrink', opts.lrShrink, 0.1);
  const step = W > 0 ? (maxLr - lr0) / W : 1;
  return {
    name: 'cosine',
    lr(n: number): number {
      checkUpdates(n);
      if (n < W) return lr0 + n * step;
      const cur = n - W;
      let i: number;
      let tI: number;
      let tCur: number;
      if (tMult !== 1) {
        i = Math.floor(Math.log(1 - (cur / period) * (1 - tMult)) / Math.log(tMult));
        tI = tMult ** i * period;
        tCur = cur - ((1 - tMult ** i) / (1 - tMult)) * period;
      } else {
        i = Math.floor(cur / period);
        tI = period;
        tCur = cur - period * i;
      }
      const s = shrink ** i;
      const lo = minLr * s;
      const hi = maxLr * s;
      return lo + 0.5 * (hi - lo) * (1 + Math.cos((Math.PI * tCur) / tI));
    },
  };
}

/** `fixed`: `lr · (n+1)/W` while `n < W` (fairseq's warmup factor), `lr` afterwards. */
export function fixedSchedule(opts: FixedOptions): LRSchedule {
  const lr = peakLr('fixed', opts.lr);
  const W = int('warmup-updates', opts.warmupUpdates, 0);
  if (W < 0) throw new ConfigError(`--warmup-updates = ${W}: expected >= 0`);
  return {
    name: 'fixed',
    lr(n: number): number {
      checkUpdates(n);
      return W > 0 && n < W ? ((n + 1) / W) * lr : lr;
    },
  };
}

/** `inverse_sqrt`: linear warmup to `lr` over `W` updates, then `lr·√W / √n`. */
export function inverseSqrtSchedule(opts: InverseSqrtOptions): LRSchedule {
  const lr = peakLr('inverse_sqrt', opts.lr);
  const W = int('warmup-updates', opts.warmupUpdates, 4000);
  if (!(W > 0)) throw new ConfigError(`--warmup-updates = ${W}: expected > 0 for inverse_sqrt`);
  let lr0 = num('warmup-init-lr', opts.warmupInitLr, -1);
  if (lr0 < 0) lr0 = 0;
  const step = (lr - lr0) / W;
  const decay = lr * W ** 0.5;
  return {
    name: 'inverse_sqrt',
    lr(n: number): number {
      checkUpdates(n);
      return n < W ? lr0 + n * step : decay * n ** -0.5;
    },
  };
}

/**
 * Build a schedule by fairseq name.
 * @throws ConfigError for an unknown name or invalid options
 */
export function makeSchedule<N extends ScheduleName>(name: N, opts: ScheduleOptionsByName[N]): LRSchedule;
export function makeSchedule(name: string, opts: object): LRSchedule;
export function makeSchedule(name: string, opts: object): LRSchedule {
  switch (name) {
    case 'linear_decay':
      return linearDecaySchedule(opts as LinearDecayOptions);
    case 'cosine':
      return cosineSchedule(opts as CosineOptions);
    case 'fixed':
      return fixedSchedule(opts as FixedOptions);
    case 'inverse_sqrt':
      return inverseSqrtSchedule(opts as InverseSqrtOptions);
    default:
      throw new ConfigError(`--lr-scheduler = ${JSON.stringify(name)}: expected one of linear_decay, cosine, fixed, inverse_sqrt`);
  }
}

/**
 * Build a schedule from fairseq argparse fields (snake_case, as stored in checkpoints and golden
 * configs): `lr_scheduler`, `lr`, `warmup_updates`, `warmup_power`, `warmup_init_lr`,
 * `end_learning_rate`, `total_num_update`, `min_lr`, `t_mult`, `lr_period_updates`, `lr_shrink`,
 * `max_update`. Missing fields take the reference defaults.
 * @throws ConfigError for a missing/unknown `lr_scheduler` or invalid values
 */
export function makeScheduleFromArgs(args: Readonly<Record<string, unknown>>): LRSchedule {
  const name = args['lr_scheduler'];
  if (typeof name !== 'string') {
    throw new ConfigError(`lr_scheduler = ${String(name)}: expected a scheduler name string`);
  }
  const g = (k: string): number | undefined => args[k] as number | undefined;
  const lr = args['lr'] as LrValue;
  return makeSchedule(name, {
    lr,
    warmupUpdates: g('warmup_updates'),
    warmupPower: g('warmup_power'),
    warmupInitLr: g('warmup_init_lr'),
    endLearningRate: g('end_learning_rate'),
    totalNumUpdate: g('total_num_update'),
    minLr: g('min_lr'),
    tMult: g('t_mult'),
    lrPeriodUpdates: g('lr_period_updates'),
    lrShrink: g('lr_shrink'),
    maxUpdate: g('max_update'),
  });
}
