/**
 * Task helpers over a loaded model: `classify` (class probabilities), `generate` (an async
 * iterator of tokens: LM sampling / greedy decoding one step at a time, or the best beam of a
 * translation) and `embed` (a fixed-size vector per input).
 *
 * Inputs are text (through the model's tokenizer), token ids, or numbers for models that read
 * values (pixel sequences, audio). Generation follows `mega generate` exactly: the same prompt
 * handling (`</s>` in front), the same sampler and seed, so the same tokens come out.
 */
import { noGrad } from '../autograd/engine.js';
import { EOS, PAD } from '../data/vocab.js';
import { IncrementalState } from '../mega/incremental.js';
import { ConfigError } from '../nn/errors.js';
import type { FloatDType } from '../tensor/dtype.js';
import { Generator } from '../tensor/random.js';
import { fromStorage, type Tensor } from '../tensor/tensor.js';
import { beamSearch, chooseToken, logSoftmaxRow, promptCalls, type BeamOptions } from '../train/generate.js';
import type { AudioClassifier, LanguageModel, Pretrained, SequenceClassifier, Translator } from './models.js';

/** Text, token ids, or values (pixels / samples) for models that read numbers. */
export type ModelInput = string | readonly number[] | Int32Array | Float32Array | Float64Array;

/** Result of {@link classify}. */
export interface Classification {
  /** The most likely class. */
  label: number;
  /** Probability of each class (softmax of the logits, in float64). */
  scores: number[];
  /** The raw logits. */
  logits: number[];
}

function ids(m: Pretrained, input: ModelInput, what: string): number[] {
  if (typeof input === 'string') {
    if (!m.tokenizer) throw new ConfigError(`${what}: this model has no vocabulary (load its model folder, or pass token ids)`);
    return m.tokenizer.encode(input);
  }
  const out = Array.from(input);
  const V = m.config.task_info.dictionary_size as number;
  for (const v of out) if (!Number.isInteger(v) || v < 0 || v >= V) throw new ConfigError(`${what}: token id ${v} is not an integer in [0, ${V})`);
  return out;
}

function values(input: ModelInput, dtype: FloatDType, what: string): Tensor {
  if (typeof input === 'string') throw new ConfigError(`${what}: this model reads numbers (pixels or audio samples), not text`);
  const a = dtype === 'f64' ? Float64Array.from(input) : Float32Array.from(input);
  return fromStorage(a, [1, a.length]);
}

const i32 = (a: readonly number[]): Tensor => fromStorage(Int32Array.from(a), [1, a.length]);

function softmax(logits: number[]): number[] {
  const m = Math.max(...logits);
  const e = logits.map((x) => Math.exp(x - m));
  const s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

/**
 * Classifies one input (text, ids or values; for retrieval models `second` is the other document).
 * @throws ConfigError for a model that does not classify, or input it cannot read
 */
export function classify(m: Pretrained, input: ModelInput, second?: ModelInput): Classification {
  if (m.kind !== 'classifier' && m.kind !== 'audio') throw new ConfigError(`classify: a ${m.kind} model does not classify (use generate)`);
  const logits = noGrad(() => classifierLogits(m, input, second));
  const row = Array.from(logits.toTypedArray());
  const scores = softmax(row);
  return { label: scores.indexOf(Math.max(...scores)), scores, logits: row };
}

function classifierLogits(m: SequenceClassifier | AudioClassifier, input: ModelInput, second?: ModelInput): Tensor {
  if (m.kind === 'audio') return m.forward(values(input, m.dtype, 'classify'));
  if (m.dualInput && second === undefined) throw new ConfigError('classify: this retrieval model compares two documents; pass the second one');
  if (m.inputType === 'image') {
    const x = values(input, m.dtype, 'classify');
    return m.forward(x, fromStorage(Int32Array.of(x.shape[1]), [1]));
  }
  const a = ids(m, input, 'classify');
  const sec = second === undefined ? undefined : ids(m, second, 'classify (second document)');
  return m.forward(i32(a), fromStorage(Int32Array.of(a.length), [1]), sec && { srcTokens: i32(sec), srcLengths: fromStorage(Int32Array.of(sec.length), [1]) });
}

/**
 * A fixed-size representation of one input: the classifier's sentence representation (before
 * its head; audio: the time-averaged encoder output), or for a translation model the mean of the
 * encoder states. Language models have no sentence representation here.
 */
export function embed(m: Pretrained, input: ModelInput): Float32Array | Float64Array {
  return noGrad(() => {
    switch (m.kind) {
      case 'classifier': {
        if (m.inputType === 'image') {
          const x = values(input, m.dtype, 'embed');
          return m.model.encoder.forward(x, fromStorage(Int32Array.of(x.shape[1]), [1])).toTypedArray() as Float32Array | Float64Array;
        }
        const a = ids(m, input, 'embed');
        return m.model.encoder.forward(i32(a), fromStorage(Int32Array.of(a.length), [1])).toTypedArray() as Float32Array | Float64Array;
      }
      case 'audio':
        return m.model.encoder.forward(values(input, m.dtype, 'embed')).toTypedArray() as Float32Array | Float64Array;
      case 'translation': {
        const a = ids(m, input, 'embed');
        const out = m.encode(i32(a)).out.toTypedArray(); // S × 1 × D
        const S = a.length,
          D = out.length / S;
        const r = m.dtype === 'f64' ? new Float64Array(D) : new Float32Array(D);
        for (let d = 0; d < D; d++) {
          let s = 0;
          for (let t = 0; t < S; t++) s += out[t * D + d];
          r[d] = s / S;
        }
        return r;
      }
      case 'lm':
        throw new ConfigError('embed: a language model has no sentence representation (use a classifier or translation model)');
    }
  });
}

/** One generated token. */
export interface GeneratedToken {
  /** Token id. */
  id: number;
  /** Its text (one byte of a byte-level model may be part of a longer UTF-8 character). */
  text: string;
  /** log p(token) under the model (temperature 1). */
  logprob: number;
}

/** Options of {@link generate}. */
export interface GenerateOptions {
  /** Most tokens to produce (default 50); an LM stops early at `</s>` unless `stopAtEos` is false. */
  maxNewTokens?: number;
  /** LM: take the most likely token (default false; `temperature` 0 means greedy too). */
  greedy?: boolean;
  /** LM: sampling temperature (default 1). */
  temperature?: number;
  /** LM: sample among the K most likely tokens (default 0: all). */
  topK?: number;
  /** LM: seed of the sampler (default 1, as `mega generate`). */
  seed?: number;
  /** LM: put `</s>` in front of the prompt, as fairseq LMs are trained (default true). */
  prefixEos?: boolean;
  /** LM: stop at `</s>` (default true). */
  stopAtEos?: boolean;
  /** Translation: beam search options (beam 5, length penalty 1, ...). */
  beam?: BeamOptions;
}

/**
 * Generates tokens after `input`: an LM continues the prompt one token per step (incremental
 * decoding); a translation model yields the tokens of its best beam-search hypothesis.
 */
export async function* generate(m: Pretrained, input: ModelInput, opts: GenerateOptions = {}): AsyncGenerator<GeneratedToken, void, undefined> {
  if (m.kind === 'lm') yield* generateLm(m, input, opts);
  else if (m.kind === 'translation') yield* translate(m, input, opts);
  else throw new ConfigError(`generate: a ${m.kind} model does not generate text (use classify)`);
}

function tokenText(m: Pretrained, id: number): string {
  return m.tokenizer ? m.tokenizer.decode([id]) : String(id);
}

async function* generateLm(m: LanguageModel, input: ModelInput, opts: GenerateOptions): AsyncGenerator<GeneratedToken, void, undefined> {
  const body =
    typeof input === 'string' ? (m.tokenizer ? m.tokenizer.encode(input, { appendEos: false }) : ids(m, input, 'generate')) : ids(m, input, 'generate');
  const prompt = opts.prefixEos === false ? body : [EOS, ...body];
  if (prompt.length === 0) throw new ConfigError('generate: empty prompt');
  const max = opts.maxNewTokens ?? 50;
  if (!Number.isInteger(max) || max < 0) throw new ConfigError(`generate: maxNewTokens must be an integer >= 0, got ${max}`);
  const temperature = opts.temperature ?? 1;
  const greedy = opts.greedy ?? temperature === 0;
  const topK = opts.topK ?? 0;
  if (!greedy && !(temperature > 0 && Number.isFinite(temperature)))
    throw new ConfigError(`generate: temperature must be a positive number (0 = greedy), got ${temperature}`);
  const gen = new Generator(opts.seed ?? 1);
  const state = new IncrementalState();
  const stop = opts.stopAtEos === false ? null : EOS;
  const feed = (toks: number[]): Float64Array =>
    noGrad(() => {
      const logits = m.forward(i32(toks), state); // 1 × L × V
      const V = logits.shape[2],
        L = logits.shape[1];
      return Float64Array.from(logits.toTypedArray().subarray((L - 1) * V, L * V));
    });
  if (max === 0) return;
  let row: Float64Array | null = null;
  let pos = 0;
  for (const len of promptCalls(prompt.length, m.model.decoder.chunkSize)) {
    row = feed(prompt.slice(pos, pos + len));
    pos += len;
  }
  for (let t = 0; t < max && row; t++) {
    const tok = chooseToken(row, { greedy, temperature, topK, banned: [PAD] }, gen);
    yield { id: tok, text: tokenText(m, tok), logprob: logSoftmaxRow(row)[tok] };
    if ((stop !== null && tok === stop) || t === max - 1) break;
    await Promise.resolve(); // let the caller's event loop breathe between steps
    row = feed([tok]);
  }
}

async function* translate(m: Translator, input: ModelInput, opts: GenerateOptions): AsyncGenerator<GeneratedToken, void, undefined> {
  let src = ids(m, input, 'generate');
  if (src[src.length - 1] !== EOS) src = [...src, EOS];
  const mt = m.model;
  const maxPos = m.config.model_args.max_target_positions;
  const hyps = beamSearch(
    {
      encode: (s) => mt.encoder.forward(s),
      reorderEncoderOut: (enc, order) => mt.reorderEncoderOut(enc, order),
      step: (prefix, enc, state) => mt.decoder.forward(prefix, enc, { state, needAttn: false }).logits,
      reorderState: (state, order) => mt.reorderIncrementalState(state, order),
      maxDecoderPositions: typeof maxPos === 'number' && maxPos > 0 ? maxPos : undefined,
    },
    [src],
    { ...(opts.maxNewTokens !== undefined ? { maxLenA: 0, maxLenB: opts.maxNewTokens } : {}), ...opts.beam },
  );
  const best = hyps[0][0];
  if (!best) return;
  for (let i = 0; i < best.tokens.length; i++) yield { id: best.tokens[i], text: tokenText(m, best.tokens[i]), logprob: best.positionalScores[i] };
}
