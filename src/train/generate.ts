/**
 * Decoding through incremental state (docs/MEGA.md §6.7, §8.3, §8.4):
 *
 * - `sampleLm`: language-model continuation of a prompt — greedy, temperature and top-k sampling
 *   from a seeded generator (reproducible). The prompt is fed in call patterns the reference
 *   supports (§6.7): with `C > 0` its longest chunk-aligned prefix in one call, then single tokens;
 *   with `C < 0` the whole prompt in one call; afterwards one token per call.
 * - `beamSearch`: fairseq `SequenceGenerator` beam search for encoder–decoder models: `</s>` as
 *   the first decoder input, `<pad>` never produced, `2·beam` candidates per step of which those
 *   ending in `</s>` among the first `beam` are finished (score normalised by `len^lenpen`,
 *   `len` counting the `</s>`), the first `beam` others continue (`IncrementalState.reorder`); a
 *   sentence is done once it has `beam` finished hypotheses; at `maxLen` `</s>` is forced.
 *
 * Both are written against small interfaces (`LmStep`, `Seq2SeqDecoder`) so any model with
 * incremental decoding plugs in; scores are computed in float64 from the model's logits.
 */
import { noGrad } from '../autograd/engine.js';
import { EOS, PAD, UNK } from '../data/vocab.js';
import { ConfigError } from '../nn/errors.js';
import { IncrementalState } from '../mega/incremental.js';
import { concat } from '../tensor/kernels.js';
import { Generator } from '../tensor/random.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';

/**
 * One incremental call of a language model: feeds the new positions `tokens` (`[B, L]`, i32)
 * through `state` and returns their logits `[B, L, V]`.
 */
export type LmStep = (tokens: Tensor, state: IncrementalState) => Tensor;

/** Options of `sampleLm`. */
export interface SampleOptions {
  /** Number of tokens to generate after the prompt (at most; fewer if every row hits `eos`). */
  maxNewTokens: number;
  /** Always take the most likely token (default: true when `temperature` is 0). */
  greedy?: boolean;
  /** Logits are divided by this before sampling (default 1; 0 means greedy). */
  temperature?: number;
  /** Sample only among the `topK` most likely tokens (0 or absent: all). */
  topK?: number;
  /** Seed of the sampling generator (default 1). */
  seed?: number;
  /** Number of independent samples (batch rows) of the one prompt (default 1). */
  numSamples?: number;
  /** Stop a row once it produces this token (default `</s>` = 2; null: never stop early). */
  eos?: number | null;
  /** Never produced (default `<pad>` = 1; null: allowed). */
  pad?: number | null;
  /** The model's decoder chunk size (`C`, negative = unchunked); decides how the prompt is fed. */
  chunkSize?: number;
  /** Keep every call's logits (for checks against a full forward). Default false. */
  keepLogits?: boolean;
  /**
   * Positions the model can see (prompt + generated tokens fed back; absent: unlimited, e.g. a
   * chunked model). Generation stops at the limit (`stoppedAtLimit`); a longer prompt is refused.
   */
  maxPositions?: number;
  /** Called with each generated token as soon as it is chosen (streaming output). */
  onToken?: (sample: number, token: number) => void;
}

/** Tokens `sampleLm` can generate after a prompt of `promptLength` within `maxPositions` (the last one is never fed back). */
export function newTokensWithin(maxPositions: number, promptLength: number): number {
  return Math.max(0, maxPositions - promptLength + 1);
}

/** Result of `sampleLm`. */
export interface SampleResult {
  /** Per sample: the generated tokens (without the prompt; ends with `eos` when produced). */
  tokens: number[][];
  /** Per sample: Σ log p(token) of the generated tokens under the model (temperature 1, no top-k). */
  logProb: number[];
  /** Per sample: log p of each generated token. */
  positionalLogProbs: number[][];
  /** With `keepLogits`: logits `[B, T, V]` of every fed position (prompt + generated but the last). */
  logits?: Tensor;
  /** The incremental calls made, as lengths (e.g. `[8, 1, 1, 1]`). */
  calls: number[];
  /** True when generation stopped at `maxPositions` before `maxNewTokens`. */
  stoppedAtLimit: boolean;
}

/** Float64 copy of row `r` (last axis) of a `[N, V]` / `[N, 1, V]` / `[N, L, V]` logits tensor, last position. */
function lastRows(logits: Tensor): Float64Array[] {
  const shape = logits.shape;
  const V = shape[shape.length - 1];
  const N = shape[0];
  const L = shape.length === 3 ? shape[1] : 1;
  const data = logits.toTypedArray();
  const rows: Float64Array[] = [];
  for (let n = 0; n < N; n++) rows.push(Float64Array.from(data.subarray((n * L + L - 1) * V, (n * L + L) * V)));
  return rows;
}

/** In-place log-softmax of one row (float64). */
export function logSoftmaxRow(row: Float64Array): Float64Array {
  let m = -Infinity;
  for (let i = 0; i < row.length; i++) if (row[i] > m) m = row[i];
  let s = 0;
  for (let i = 0; i < row.length; i++) s += Math.exp(row[i] - m);
  const lse = m + Math.log(s);
  const out = new Float64Array(row.length);
  for (let i = 0; i < row.length; i++) out[i] = row[i] - lse;
  return out;
}

function i32(data: number[], shape: number[]): Tensor {
  return fromStorage(Int32Array.from(data), shape);
}

function checkInt(name: string, v: number, min: number): void {
  if (!Number.isInteger(v) || v < min) throw new ConfigError(`${name} must be an integer >= ${min}, got ${v}`);
}

/**
 * Chooses one token from `row` (raw logits): argmax when greedy, else a sample of
 * `softmax(row / temperature)` restricted to the `topK` largest (ties: lower id first).
 */
export function chooseToken(row: Float64Array, opts: { greedy: boolean; temperature: number; topK: number; banned: number[] }, gen: Generator): number {
  const V = row.length;
  const allowed: number[] = [];
  for (let v = 0; v < V; v++) if (!opts.banned.includes(v) && !Number.isNaN(row[v])) allowed.push(v);
  if (allowed.length === 0) throw new ConfigError('every token is banned or NaN; cannot choose one');
  if (opts.greedy) {
    let best = allowed[0];
    for (const v of allowed) if (row[v] > row[best]) best = v;
    return best;
  }
  let cand = allowed;
  if (opts.topK > 0 && opts.topK < cand.length) {
    cand = [...cand]
      .sort((a, b) => row[b] - row[a] || a - b)
      .slice(0, opts.topK)
      .sort((a, b) => a - b);
  }
  const scaled = cand.map((v) => row[v] / opts.temperature);
  const m = Math.max(...scaled);
  const w = scaled.map((s) => Math.exp(s - m));
  const total = w.reduce((a, b) => a + b, 0);
  let u = gen.uniform() * total;
  for (let i = 0; i < cand.length; i++) {
    u -= w[i];
    if (u < 0) return cand[i];
  }
  return cand[cand.length - 1];
}

/**
 * The lengths of the incremental calls that feed a prompt of `n` tokens: with `chunk > 0` the
 * chunk-aligned prefix at once and the rest one by one; with `chunk <= 0` all at once.
 */
export function promptCalls(n: number, chunk: number): number[] {
  if (n === 0) return [];
  if (chunk <= 0) return [n];
  const head = Math.floor(n / chunk) * chunk;
  return [...(head > 0 ? [head] : []), ...new Array<number>(n - head).fill(1)];
}

/**
 * Continues `prompt` (token ids, e.g. `[</s>, t0, t1, ...]`) with `step`'s model.
 * @throws ConfigError on invalid options or an empty prompt
 */
export function sampleLm(step: LmStep, prompt: readonly number[], opts: SampleOptions): SampleResult {
  const temperature = opts.temperature ?? 1;
  const greedy = opts.greedy ?? temperature === 0;
  const topK = opts.topK ?? 0;
  const B = opts.numSamples ?? 1;
  const eos = opts.eos === undefined ? EOS : opts.eos;
  const pad = opts.pad === undefined ? PAD : opts.pad;
  checkInt('maxNewTokens', opts.maxNewTokens, 0);
  checkInt('numSamples', B, 1);
  checkInt('topK', topK, 0);
  if (!greedy && !(temperature > 0 && Number.isFinite(temperature)))
    throw new ConfigError(`temperature must be a positive number (0 = greedy), got ${temperature}`);
  if (prompt.length === 0) throw new ConfigError('the prompt is empty (an LM prompt starts with </s>)');
  const maxPos = opts.maxPositions ?? Infinity;
  if (opts.maxNewTokens > 0 && prompt.length > maxPos) {
    throw new ConfigError(`the prompt has ${prompt.length} tokens but the model sees at most ${maxPos} positions`);
  }
  const n = Math.min(opts.maxNewTokens, newTokensWithin(maxPos, prompt.length));
  const gen = new Generator(opts.seed ?? 1);
  const banned = pad === null ? [] : [pad];
  const state = new IncrementalState();
  const kept: Tensor[] = [];
  const calls: number[] = [];
  const tokens: number[][] = Array.from({ length: B }, () => []);
  const positional: number[][] = Array.from({ length: B }, () => []);
  const done = new Array<boolean>(B).fill(false);

  return noGrad(() => {
    const feed = (ids: number[][]): Float64Array[] => {
      const L = ids[0].length;
      const logits = step(i32(ids.flat(), [B, L]), state);
      if (logits.ndim !== 3 || logits.shape[0] !== B || logits.shape[1] !== L) {
        throw new Error(`LM step returned logits of shape [${logits.shape}], expected [${B}, ${L}, V]`);
      }
      calls.push(L);
      if (opts.keepLogits) kept.push(logits);
      return lastRows(logits);
    };

    let rows: Float64Array[] | null = null;
    let pos = 0;
    for (const len of opts.maxNewTokens > 0 || opts.keepLogits ? promptCalls(prompt.length, opts.chunkSize ?? -1) : []) {
      const seg = prompt.slice(pos, pos + len);
      rows = feed(Array.from({ length: B }, () => [...seg]));
      pos += len;
    }
    for (let t = 0; t < n && rows; t++) {
      const next: number[] = [];
      for (let b = 0; b < B; b++) {
        if (done[b]) {
          next.push(eos ?? pad ?? 0);
          continue;
        }
        const tok = chooseToken(rows[b], { greedy, temperature, topK, banned }, gen);
        const lp = logSoftmaxRow(rows[b])[tok];
        tokens[b].push(tok);
        positional[b].push(lp);
        opts.onToken?.(b, tok);
        if (eos !== null && tok === eos) done[b] = true;
        next.push(tok);
      }
      if (done.every(Boolean) || t === n - 1) break;
      rows = feed(next.map((v) => [v]));
    }
    const logProb = positional.map((p) => p.reduce((a, b) => a + b, 0));
    const stoppedAtLimit = n < opts.maxNewTokens && !done.every(Boolean);
    const res: SampleResult = { tokens, logProb, positionalLogProbs: positional, calls, stoppedAtLimit };
    if (opts.keepLogits && kept.length) res.logits = kept.length === 1 ? kept[0] : concat(kept, 1);
    return res;
  });
}

/** An encoder–decoder model seen by `beamSearch`. */
export interface Seq2SeqDecoder<E> {
  /** Encodes right-padded `src` (`[B, S]` i32) with lengths `[B]`. */
  encode(src: Tensor, srcLengths: Tensor): E;
  /** Encoder output with its batch rows reordered/expanded by `order` (i32 `[N]`). */
  reorderEncoderOut(enc: E, order: Tensor): E;
  /**
   * One incremental decoder step: `prefix` (`[N, t+1]` i32, starting with `</s>`) is the whole
   * target prefix, of which only the last token is new to `state`; returns the logits of that
   * last position, `[N, V]` or `[N, 1, V]`.
   */
  step(prefix: Tensor, enc: E, state: IncrementalState): Tensor;
  /** Reorders the incremental state for beam search (default `state.reorder(order)`). */
  reorderState?(state: IncrementalState, order: Tensor): void;
  /** Largest decoder length supported (fairseq `max_decoder_positions`), if limited. */
  maxDecoderPositions?: number;
}

/** Options of `beamSearch` (fairseq `generate.py` names in parentheses). */
export interface BeamOptions {
  /** Beam size (`--beam`, default 5). */
  beam?: number;
  /** Max output length = `maxLenA · srcLen + maxLenB` (`--max-len-a` 0, `--max-len-b` 200). */
  maxLenA?: number;
  maxLenB?: number;
  /** Minimum output length before `</s>` is allowed (`--min-len`, default 1). */
  minLen?: number;
  /** Length penalty: score / len^lenPenalty (`--lenpen`, default 1). */
  lenPenalty?: number;
  /** Subtracted from `<unk>`'s log-probability (`--unkpen`, default 0). */
  unkPenalty?: number;
  eos?: number;
  pad?: number;
  unk?: number;
  /** Pad shorter sources on the left (fairseq's `--left-pad-source True`, its default). */
  leftPadSource?: boolean;
}

/** One finished hypothesis. */
export interface Hypothesis {
  /** Output tokens, ending with `</s>` (without the leading `</s>` decoder input). */
  tokens: number[];
  /** `rawScore / tokens.length ^ lenPenalty`. */
  score: number;
  /** Σ of `positionalScores`. */
  rawScore: number;
  /** log p(token_t | prefix) per output token (model log-softmax, `<unk>` penalty included). */
  positionalScores: number[];
}

/**
 * The `k` best `(j, v)` of `score(j, v)` over `j < nb`, `v < V`, best first; ties (and -∞) in
 * flat-index order `j·V + v`. A bounded insertion list: O(nb·V) comparisons for small `k`.
 */
export function topCandidates(nb: number, V: number, k: number, score: (j: number, v: number) => number): { j: number; v: number; score: number }[] {
  const out: { j: number; v: number; score: number }[] = [];
  for (let j = 0; j < nb; j++) {
    for (let v = 0; v < V; v++) {
      let sc = score(j, v);
      if (Number.isNaN(sc)) sc = -Infinity;
      if (out.length === k && !(sc > out[k - 1].score)) continue;
      let i = out.length;
      while (i > 0 && sc > out[i - 1].score) i--;
      out.splice(i, 0, { j, v, score: sc });
      if (out.length > k) out.pop();
    }
  }
  return out;
}

/**
 * Beam search over `model` for each source sentence of `src` (token ids, normally ending with
 * `</s>`). Returns per sentence its hypotheses, best first (at most `beam`).
 * @throws ConfigError on invalid options or an empty source
 */
export function beamSearch<E>(model: Seq2SeqDecoder<E>, src: readonly (readonly number[])[], opts: BeamOptions = {}): Hypothesis[][] {
  const beam = opts.beam ?? 5;
  const eos = opts.eos ?? EOS,
    pad = opts.pad ?? PAD,
    unk = opts.unk ?? UNK;
  const lenPenalty = opts.lenPenalty ?? 1;
  const unkPenalty = opts.unkPenalty ?? 0;
  const minLen = opts.minLen ?? 1;
  checkInt('beam', beam, 1);
  checkInt('minLen', minLen, 0);
  if (src.length === 0) throw new ConfigError('no source sentences');
  src.forEach((s, i) => {
    if (s.length === 0) throw new ConfigError(`source sentence ${i} is empty`);
  });
  const B = src.length;
  const S = Math.max(...src.map((s) => s.length));
  let maxLen = Math.floor((opts.maxLenA ?? 0) * S + (opts.maxLenB ?? 200));
  if (model.maxDecoderPositions !== undefined) maxLen = Math.min(maxLen, model.maxDecoderPositions - 1);
  if (maxLen < 1) throw new ConfigError(`maximum output length is ${maxLen}; need at least 1`);

  return noGrad(() => {
    const padding = (s: readonly number[]) => new Array<number>(S - s.length).fill(pad);
    const srcT = i32(
      src.flatMap((s) => (opts.leftPadSource ? [...padding(s), ...s] : [...s, ...padding(s)])),
      [B, S],
    );
    const lens = i32(
      src.map((s) => s.length),
      [B],
    );
    const N = B * beam;
    const enc = model.reorderEncoderOut(
      model.encode(srcT, lens),
      i32(
        Array.from({ length: N }, (_, r) => Math.floor(r / beam)),
        [N],
      ),
    );
    const state = new IncrementalState();
    let prefixes: number[][] = Array.from({ length: N }, () => [eos]);
    let scores = new Float64Array(N);
    let positional: number[][] = Array.from({ length: N }, () => []);
    const finalized: Hypothesis[][] = Array.from({ length: B }, () => []);
    const done = new Array<boolean>(B).fill(false);

    for (let t = 0; t <= maxLen && !done.every(Boolean); t++) {
      const logits = model.step(i32(prefixes.flat(), [N, t + 1]), enc, state);
      if (logits.shape[0] !== N) throw new Error(`decoder step returned logits of shape [${logits.shape}], expected [${N}, (1,) V]`);
      const lprobs = lastRows(logits).map(logSoftmaxRow);
      const V = lprobs[0].length;
      for (const lp of lprobs) {
        if (pad >= 0 && pad < V) lp[pad] = -Infinity;
        if (unk >= 0 && unk < V) lp[unk] -= unkPenalty;
        if (t >= maxLen) {
          for (let v = 0; v < V; v++) if (v !== eos) lp[v] = -Infinity;
        } else if (t < minLen) lp[eos] = -Infinity;
      }
      const order: number[] = [];
      const nextPrefixes: number[][] = [];
      const nextScores = new Float64Array(N);
      const nextPositional: number[][] = [];
      for (let b = 0; b < B; b++) {
        const keep = (row: number, tok: number, sc: number) => {
          order.push(row);
          nextPrefixes.push([...prefixes[row], tok]);
          nextScores[order.length - 1] = sc;
          nextPositional.push([...positional[row], lprobs[row][tok]]);
        };
        if (done[b]) {
          // a finished sentence keeps running on dummy tokens (rows are independent)
          for (let j = 0; j < beam; j++) keep(b * beam + j, eos, -Infinity);
          continue;
        }
        // the 2·beam best (beam, token) continuations; at t = 0 every beam is the same, use beam 0
        const nb = t === 0 ? 1 : beam;
        const top = topCandidates(nb, V, 2 * beam, (j, v) => scores[b * beam + j] + lprobs[b * beam + j][v]).map(({ j, v, score }) => ({
          row: b * beam + j,
          tok: v,
          score,
        }));
        for (let i = 0; i < Math.min(beam, top.length); i++) {
          const c = top[i];
          if (c.tok !== eos || c.score === -Infinity || finalized[b].length >= beam) continue;
          const ps = [...positional[c.row], lprobs[c.row][c.tok]];
          const toks = [...prefixes[c.row].slice(1), eos];
          finalized[b].push({ tokens: toks, score: c.score / Math.pow(toks.length, lenPenalty), rawScore: c.score, positionalScores: ps });
        }
        if (finalized[b].length >= beam || t >= maxLen) {
          done[b] = true;
          for (let j = 0; j < beam; j++) keep(b * beam + j, eos, -Infinity);
          continue;
        }
        const active = top.filter((c) => c.tok !== eos);
        for (let j = 0; j < beam; j++) {
          const c = active[j] ?? active[active.length - 1] ?? { row: b * beam, tok: eos, score: -Infinity };
          keep(c.row, c.tok, j < active.length ? c.score : -Infinity);
        }
      }
      prefixes = nextPrefixes;
      scores = nextScores;
      positional = nextPositional;
      if (!done.every(Boolean)) {
        const o = i32(order, [N]);
        if (model.reorderState) model.reorderState(state, o);
        else state.reorder(o);
      }
    }
    return finalized.map((f) => [...f].sort((a, b) => b.score - a.score));
  });
}
