/**
 * Cutoff lists of adaptive input / adaptive softmax (`--adaptive-input-cutoff`,
 * `--adaptive-softmax-cutoff`): the vocabulary `[0, V)` is split into bands
 * `[0, c₀), [c₀, c₁), …, [c_{n−1}, V)`. fairseq reads the flag with `eval_str_list`, so
 * `"20000,60000"`, `"[20000, 60000]"` and `"(20000, 60000)"` all mean the same; `V` is appended
 * when the last cutoff is below it.
 */
import { ConfigError } from '../../nn/errors.js';

/**
 * Parses a cutoff value (string as fairseq takes it, a number or a number array) and completes it
 * with `V`: the result is strictly increasing, positive and ends with `V`.
 * @param what the flag name for messages, e.g. `adaptive_softmax_cutoff`
 * @throws ConfigError for a malformed list, non-increasing or non-positive cutoffs, or a cutoff above `V`
 */
export function parseCutoffs(value: unknown, V: number, what: string): number[] {
  let raw: unknown[];
  if (typeof value === 'number') raw = [value];
  else if (Array.isArray(value)) raw = value;
  else if (typeof value === 'string') {
    const body = value
      .trim()
      .replace(/^[[(]\s*/, '')
      .replace(/\s*,?\s*[\])]$/, '');
    raw = body === '' ? [] : body.split(',').map((s) => (/^\s*\d+\s*$/.test(s) ? Number(s) : s.trim()));
  } else throw new ConfigError(`args.${what} = ${String(value)}: expected a comma separated list of integers such as "20000,60000"`);
  if (raw.length === 0) throw new ConfigError(`args.${what} = ${JSON.stringify(value)}: expected at least one cutoff`);
  const cut = raw.map((c) => {
    if (typeof c !== 'number' || !Number.isInteger(c) || c <= 0)
      throw new ConfigError(`args.${what} = ${JSON.stringify(value)}: cutoff ${JSON.stringify(c)} is not a positive integer`);
    return c;
  });
  for (let i = 1; i < cut.length; i++) {
    if (cut[i] <= cut[i - 1]) throw new ConfigError(`args.${what} = ${JSON.stringify(value)}: cutoffs must increase`);
  }
  const last = cut[cut.length - 1];
  if (last > V) throw new ConfigError(`args.${what} = ${JSON.stringify(value)}: cutoff ${last} is larger than the vocabulary (${V} symbols)`);
  return last < V ? [...cut, V] : cut;
}

/** Band width of band `i` (fairseq: `int(dim // factor ** i)`); at least 1. */
export function bandDim(dim: number, factor: number, i: number, what: string): number {
  if (!(factor > 0)) throw new ConfigError(`args.${what} = ${factor}: expected a positive factor`);
  const d = Math.floor(dim / factor ** i);
  if (d < 1) throw new ConfigError(`args.${what} = ${factor}: band ${i} would have width ${dim} // ${factor}^${i} = ${d} (must be at least 1)`);
  return d;
}
