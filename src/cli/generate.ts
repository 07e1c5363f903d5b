/**
 * `mega generate CKPT [options]`: LM sampling (greedy / temperature / top-k) or NMT beam search
 * through incremental decoding (see `train/generate.ts`). CKPT is a mega-ts weights file or a
 * fairseq `.pt` (imported on the fly).
 */
import { BYTE_VOCAB_SIZE, EOS, decodeText, encodeText } from '../data/vocab.js';
import { readDictOption } from './dict-option.js';
import type { TaskInfo } from '../mega/models/common.js';
import { MegaLanguageModel } from '../mega/models/lm.js';
import { MegaModel, type EncoderOut } from '../mega/models/nmt.js';
import { ConfigError } from '../nn/errors.js';
import { maxInputLength } from '../train/arch.js';
import { beamSearch, newTokensWithin, sampleLm, type Seq2SeqDecoder } from '../train/generate.js';
import { loadModelFile } from '../train/fairseq-import.js';
import { flagName, parseFlags, type OptSpec } from '../train/flags.js';
import { loadFairseqModel } from '../train/fairseq-eval.js';
import { generateFairseq } from '../train/fairseq-generate.js';
import { UsageError } from './errors.js';

const S = (type: OptSpec['type'], help: string, extra: Partial<OptSpec> = {}): OptSpec => ({ type, help, group: 'main', ...extra });
const FS = (type: OptSpec['type'], help: string, extra: Partial<OptSpec> = {}): OptSpec => ({ type, help, group: 'fairseq', ...extra });

/** Options of `mega generate` (fairseq-generate's names included). */
export const GENERATE_OPTIONS: Readonly<Record<string, OptSpec>> = {
  prompt: S('string', 'LM prompt text'),
  prompt_ids: S('string', 'LM prompt as token ids'),
  no_prefix_eos: S('boolean', 'no </s> before the prompt'),
  max_new_tokens: S('string', 'tokens to generate'),
  greedy: S('boolean', 'greedy decoding'),
  temperature: S('string', 'sampling temperature'),
  top_k: S('string', 'top-k sampling'),
  num_samples: S('string', 'samples'),
  seed: S('string', 'sampler seed'),
  no_stop_at_eos: S('boolean', 'do not stop at </s>'),
  src: S('string', 'source sentence', { repeat: true }),
  src_ids: S('string', 'source token ids', { repeat: true }),
  beam: S('string', 'beam size'),
  nbest: S('string', 'hypotheses per sentence'),
  lenpen: S('string', 'length penalty'),
  max_len_a: S('string', 'max length A'),
  max_len_b: S('string', 'max length B'),
  min_len: S('string', 'minimum length'),
  unkpen: S('string', 'unk penalty'),
  dict: S('string', 'dict.txt'),
  dtype: S('string', 'f32 or f64', { choices: ['f32', 'f64'] }),
  json: S('boolean', 'one JSON line'),
  path: FS('string', 'fairseq checkpoint (.pt): mega generate DATA --path CKPT.pt'),
  gen_subset: FS('string', 'split of DATA to translate (default test)'),
  source_lang: FS('string', "source language (default: the checkpoint's)", { short: 's' }),
  target_lang: FS('string', "target language (default: the checkpoint's)", { short: 't' }),
  remove_bpe: FS('string', 'remove this BPE continuation symbol (e.g. "@@ ") from the output; BLEU is then on words'),
  batch_size: FS('string', 'sentences per batch (default 1)'),
  max_sentences: FS('string', 'fairseq name of --batch-size', { aliasOf: 'batch_size' }),
  cpu: FS('boolean', '', { infra: 'mega-ts computes on the CPU unless --backend gpujs is given' }),
  fp16: FS('boolean', '', { infra: 'not supported; generation runs in float32' }),
  num_workers: FS('int', '', { infra: 'no data-loader workers here (data is read in the main thread)' }),
  log_format: FS('string', '', { infra: "output is fixed: fairseq-generate's lines, or one JSON line with --json" }),
};

interface GenerateValues {
  help?: boolean;
  prompt?: string;
  prompt_ids?: string;
  no_prefix_eos?: boolean;
  max_new_tokens?: string;
  greedy?: boolean;
  temperature?: string;
  top_k?: string;
  num_samples?: string;
  seed?: string;
  no_stop_at_eos?: boolean;
  src?: string[];
  src_ids?: string[];
  beam?: string;
  nbest?: string;
  lenpen?: string;
  max_len_a?: string;
  max_len_b?: string;
  min_len?: string;
  unkpen?: string;
  dict?: string;
  dtype?: string;
  json?: boolean;
  path?: string;
  gen_subset?: string;
  remove_bpe?: string;
  source_lang?: string;
  target_lang?: string;
  batch_size?: string;
}

export const GENERATE_HELP = `Usage: mega generate [options] CKPT

Decodes with a trained model, one token per step through incremental decoding (the model's
cached state), as fairseq does. CKPT is a mega-ts weights file (mega train / mega import-fairseq)
or a fairseq Mega .pt checkpoint (imported on the fly).

Language model (MegaLanguageModel): continues a prompt. </s> is put in front of the prompt, as
fairseq LMs are trained with it (--no-prefix-eos to leave it out).
  --prompt TEXT        prompt: words of --dict, else UTF-8 bytes when the vocabulary is byte-level
  --prompt-ids IDS     prompt as token ids ("5 9 12" or "5,9,12")
  --max-new-tokens N   tokens to generate (default 50); stops early at </s> unless --no-stop-at-eos,
                       and at the model's positions (max_target_positions of an unchunked model)
  --greedy             take the most likely token at each step (= --temperature 0)
  --temperature T      sampling temperature (default 1)
  --top-k K            sample among the K most likely tokens only (default 0: all)
  --num-samples N      independent samples (default 1)
  --seed S             seed of the sampler (default 1): same seed, same samples

Translation (MegaModel): beam search (fairseq's sequence generator: </s> starts the target,
<pad> is never produced, scores are Σ log p / length^lenpen).
  --src TEXT           source sentence (repeatable): words of --dict; </s> is appended
  --src-ids IDS        source as token ids (repeatable; </s> appended unless already last)
  --beam N             beam size (default 5)
  --nbest N            hypotheses shown per sentence (default 1)
  --lenpen F           length penalty (default 1)
  --max-len-a A        maximum output length A·(source length) + B (defaults 0 and 200)
  --max-len-b B
  --min-len N          minimum output length (default 1)

fairseq-generate over a translation data folder (a fairseq checkpoint; its stored args):
  mega generate DATA --path CKPT.pt [--gen-subset test] [-s en -t de] [--batch-size N] [--beam N]
                [--nbest N] [--max-len-a A --max-len-b B] [--min-len N] [--lenpen F] [--unkpen F] [--remove-bpe "@@ "]
  prints fairseq's S-/T-/H-/D-/P- lines (scores in base 2, fairseq's order) and its BLEU4 line.
  --cpu, --fp16, --num-workers, --log-format are accepted; each prints what it becomes here.

Common:
  --dict FILE          fairseq dict.txt ("<word> <count>" lines; ids from 4) mapping words ↔ ids
  --dtype f32|f64      computation precision (default f32)
  --json               print one final JSON line with the results

Output: per LM sample "H-i<TAB>logprob<TAB>text"; per source sentence "S-i<TAB>source", then per
hypothesis "H-i<TAB>score<TAB>text" and "P-i<TAB>per-token log-probabilities". On a terminal, the
text of a single LM sample also appears on stderr token by token as it is generated.`;

function parseIds(s: string, what: string, V: number): number[] {
  const parts = s.split(/[\s,]+/).filter((x) => x !== '');
  if (parts.length === 0) throw new UsageError(`${what}: no token ids in ${JSON.stringify(s)}`);
  return parts.map((p) => {
    const v = Number(p);
    if (!/^\d+$/.test(p) || v >= V) throw new UsageError(`${what}: token id ${JSON.stringify(p)} is not an integer in [0, ${V})`);
    return v;
  });
}

function num(v: string | undefined, name: string, dflt: number, { int = false, min = -Infinity } = {}): number {
  if (v === undefined) return dflt;
  const x = Number(v);
  if (v.trim() === '' || !Number.isFinite(x) || (int && !Number.isInteger(x)) || x < min) {
    throw new UsageError(`--${name} must be ${int ? 'an integer' : 'a number'}${min > -Infinity ? ` >= ${min}` : ''}, got '${v}'`);
  }
  return x;
}

/** Text ↔ ids for a vocabulary of `V` ids. */
interface Codec {
  kind: 'dict' | 'bytes' | 'ids';
  encode(text: string, what: string): number[];
  decode(ids: number[]): string;
}

function makeCodec(V: number, dictPath: string | undefined): Codec {
  if (dictPath !== undefined) {
    const d = readDictOption(dictPath);
    if (d.size > V) throw new UsageError(`--dict ${dictPath} has ${d.size} symbols but the model's vocabulary has ${V}`);
    return {
      kind: 'dict',
      encode: (t) => Array.from(d.encodeLine(t, { appendEos: false })),
      decode: (ids) => d.decode(ids.filter((i) => i < d.size)).join(' '),
    };
  }
  if (V === BYTE_VOCAB_SIZE) {
    return { kind: 'bytes', encode: (t) => Array.from(encodeText(t, { appendEos: false })), decode: (ids) => decodeText(ids) };
  }
  return {
    kind: 'ids',
    encode: (_t, what) => {
      throw new UsageError(`${what}: this model's vocabulary (${V} ids) is not byte-level; give --dict FILE or token ids`);
    },
    decode: (ids) => ids.join(' '),
  };
}

/** Positions an LM checkpoint's model can see (undefined: unlimited, i.e. chunked). */
function lmMaxPositions(modelArgs: Record<string, unknown>): number | undefined {
  const n = maxInputLength('mega_lm', modelArgs).source;
  return typeof n === 'number' && Number.isFinite(n) && n > 0 ? n : undefined;
}

/** Writes a sample's text to stderr as its tokens come (the final output still goes to stdout). */
function liveText(codec: Codec): { push: (sample: number, token: number) => void; end: () => void } {
  const toks: number[] = [];
  let shown = '';
  return {
    push: (_sample, token) => {
      toks.push(token);
      const text = codec.kind === 'ids' ? toks.join(' ') : codec.decode(toks);
      // a byte-level text may end inside a UTF-8 character: show only what is settled
      if (text.startsWith(shown) && !text.endsWith('\uFFFD')) {
        process.stderr.write(text.slice(shown.length));
        shown = text;
      }
    },
    end: () => {
      if (toks.length) process.stderr.write('\n');
    },
  };
}

/** `mega generate DATA --path CKPT.pt ...`: fairseq-generate over a split of a translation data folder. */
function fairseqGenerate(values: GenerateValues, positionals: string[], out: (s: string) => void): number {
  if (positionals.length !== 1) throw new UsageError(`expected one DATA folder with --path, got ${positionals.length} argument(s) (see mega generate --help)`);
  const beam = num(values.beam, 'beam', 5, { int: true, min: 1 });
  const nbest = num(values.nbest, 'nbest', 1, { int: true, min: 1 });
  if (nbest > beam) throw new UsageError(`--nbest ${nbest} exceeds --beam ${beam}`);
  const fm = loadFairseqModel(values.path!);
  const r = generateFairseq(fm, positionals[0]!, {
    split: values.gen_subset ?? 'test',
    beam,
    nbest,
    batchSize: num(values.batch_size, 'batch-size', 1, { int: true, min: 1 }),
    maxLenA: num(values.max_len_a, 'max-len-a', 0, { min: 0 }),
    maxLenB: num(values.max_len_b, 'max-len-b', 200, { int: true, min: 1 }),
    minLen: num(values.min_len, 'min-len', 1, { int: true, min: 0 }),
    lenpen: num(values.lenpen, 'lenpen', 1),
    unkpen: num(values.unkpen, 'unkpen', 0),
    sourceLang: values.source_lang,
    targetLang: values.target_lang,
    removeBpe: values.remove_bpe,
  });
  if (values.json)
    out(JSON.stringify({ mode: 'fairseq-generate', checkpoint: values.path, data: positionals[0], lines: r.lines, hypotheses: r.hypotheses, bleu: r.bleu }));
  else for (const l of r.lines) out(l);
  return 0;
}

/** Runs the command; returns the exit code. */
export function generateCommand(argv: string[], out: (s: string) => void): number {
  const parsed = parseFlags(argv, GENERATE_OPTIONS, 'generate');
  const values = parsed.values as GenerateValues;
  const positionals = parsed.positionals;
  if (values.help) {
    out(GENERATE_HELP);
    return 0;
  }
  for (const n of parsed.notes) process.stderr.write(`mega generate: ${n}\n`);
  if (values.path !== undefined) return fairseqGenerate(values, positionals, out);
  const dtype = values.dtype ?? 'f32';
  if (dtype !== 'f32' && dtype !== 'f64') throw new UsageError(`--dtype must be f32 or f64, got '${dtype}'`);
  if (positionals.length !== 1) throw new UsageError(`expected one checkpoint, got ${positionals.length} argument(s) (see mega generate --help)`);
  const ckpt = positionals[0];
  const lmFlags = (['prompt', 'prompt_ids', 'max_new_tokens', 'temperature', 'top_k', 'num_samples', 'seed'] as const)
    .filter((k) => values[k] !== undefined)
    .map(flagName);
  const mtFlags = (['src', 'src_ids', 'beam', 'nbest', 'lenpen', 'max_len_a', 'max_len_b', 'min_len'] as const)
    .filter((k) => values[k] !== undefined)
    .map(flagName);
  const loaded = loadModelFile(ckpt, { dtype });
  const task = (loaded.model as { task?: TaskInfo }).task;
  const V = task?.dictionary_size ?? 0;

  if (loaded.model instanceof MegaLanguageModel) {
    if (mtFlags.length) throw new UsageError(`${mtFlags[0]} is for translation models; ${ckpt} holds a MegaLanguageModel`);
    const lm = loaded.model;
    const codec = makeCodec(V, values.dict);
    if (values.prompt !== undefined && values.prompt_ids !== undefined) throw new UsageError('give --prompt or --prompt-ids, not both');
    const body =
      values.prompt_ids !== undefined
        ? parseIds(values.prompt_ids, '--prompt-ids', V)
        : values.prompt !== undefined
          ? codec.encode(values.prompt, '--prompt')
          : [];
    const prompt = values.no_prefix_eos ? body : [EOS, ...body];
    if (prompt.length === 0) throw new UsageError('empty prompt (with --no-prefix-eos give --prompt or --prompt-ids)');
    const temperature = num(values.temperature, 'temperature', 1, { min: 0 });
    const maxPositions = lmMaxPositions(loaded.spec.modelArgs);
    if (maxPositions !== undefined && prompt.length > maxPositions) {
      throw new UsageError(
        `the prompt has ${prompt.length} tokens${values.no_prefix_eos ? '' : ' (with the leading </s>)'} ` +
          `but the model sees at most ${maxPositions} positions (max_target_positions)`,
      );
    }
    const opts = {
      maxNewTokens: num(values.max_new_tokens, 'max-new-tokens', 50, { int: true, min: 0 }),
      greedy: values.greedy || temperature === 0,
      temperature,
      topK: num(values.top_k, 'top-k', 0, { int: true, min: 0 }),
      numSamples: num(values.num_samples, 'num-samples', 1, { int: true, min: 1 }),
      seed: num(values.seed, 'seed', 1, { int: true, min: 0 }),
      eos: values.no_stop_at_eos ? null : EOS,
      chunkSize: lm.decoder.chunkSize,
      maxPositions,
    };
    const allowed = maxPositions === undefined ? Infinity : newTokensWithin(maxPositions, prompt.length);
    if (opts.maxNewTokens > allowed) {
      process.stderr.write(
        `mega generate: note: the model sees at most ${maxPositions} positions (max_target_positions) and the ` +
          `prompt takes ${prompt.length}: generating at most ${allowed} of the ${opts.maxNewTokens} tokens asked for\n`,
      );
    }
    const live = !values.json && opts.numSamples === 1 && process.stderr.isTTY ? liveText(codec) : null;
    const t0 = performance.now();
    const r = sampleLm((tokens, state) => lm.forward(tokens, state), prompt, { ...opts, onToken: live?.push });
    live?.end();
    const seconds = (performance.now() - t0) / 1000;
    const samples = r.tokens.map((toks, i) => ({ tokens: toks, text: codec.decode(toks), logprob: r.logProb[i] }));
    if (values.json) {
      out(
        JSON.stringify({
          mode: 'lm',
          checkpoint: ckpt,
          model: loaded.className,
          prompt,
          decoding: opts.greedy ? 'greedy' : `sample(temperature=${opts.temperature}, top_k=${opts.topK}, seed=${opts.seed})`,
          samples,
          stopped_at_max_positions: r.stoppedAtLimit,
          seconds,
        }),
      );
    } else {
      samples.forEach((s, i) => out(`H-${i}\t${s.logprob.toFixed(4)}\t${codec.kind === 'ids' ? s.tokens.join(' ') : s.text}`));
    }
    return 0;
  }

  if (loaded.model instanceof MegaModel) {
    if (lmFlags.length) throw new UsageError(`${lmFlags[0]} is for language models; ${ckpt} holds a MegaModel (translation)`);
    const mt = loaded.model;
    const codec = makeCodec(V, values.dict);
    const srcs: number[][] = [];
    for (const s of values.src ?? []) srcs.push([...codec.encode(s, '--src'), EOS]);
    for (const s of values.src_ids ?? []) {
      const ids = parseIds(s, '--src-ids', V);
      srcs.push(ids[ids.length - 1] === EOS ? ids : [...ids, EOS]);
    }
    if (srcs.length === 0) throw new UsageError('no source sentence: give --src TEXT or --src-ids IDS (see mega generate --help)');
    const beam = num(values.beam, 'beam', 5, { int: true, min: 1 });
    const nbest = num(values.nbest, 'nbest', 1, { int: true, min: 1 });
    if (nbest > beam) throw new UsageError(`--nbest ${nbest} exceeds --beam ${beam}`);
    const maxPos = loaded.spec.modelArgs.max_target_positions;
    const s2s: Seq2SeqDecoder<EncoderOut> = {
      encode: (src) => mt.encoder.forward(src),
      reorderEncoderOut: (enc, order) => mt.reorderEncoderOut(enc, order),
      step: (prefix, enc, state) => mt.decoder.forward(prefix, enc, { state, needAttn: false }).logits,
      reorderState: (state, order) => mt.reorderIncrementalState(state, order),
      maxDecoderPositions: typeof maxPos === 'number' && maxPos > 0 ? maxPos : undefined,
    };
    const opts = {
      beam,
      lenPenalty: num(values.lenpen, 'lenpen', 1),
      maxLenA: num(values.max_len_a, 'max-len-a', 0, { min: 0 }),
      maxLenB: num(values.max_len_b, 'max-len-b', 200, { int: true, min: 1 }),
      minLen: num(values.min_len, 'min-len', 1, { int: true, min: 0 }),
    };
    const t0 = performance.now();
    const hyps = beamSearch(s2s, srcs, opts);
    const seconds = (performance.now() - t0) / 1000;
    const results = srcs.map((src, i) => ({
      source: src,
      hypotheses: hyps[i]
        .slice(0, nbest)
        .map((h) => ({ tokens: h.tokens, text: codec.decode(h.tokens), score: h.score, positional_scores: h.positionalScores })),
    }));
    if (values.json) {
      out(JSON.stringify({ mode: 'translation', checkpoint: ckpt, model: loaded.className, beam, lenpen: opts.lenPenalty, results, seconds }));
    } else {
      results.forEach((r, i) => {
        out(`S-${i}\t${codec.kind === 'ids' ? r.source.join(' ') : codec.decode(r.source)}`);
        for (const h of r.hypotheses) {
          out(`H-${i}\t${h.score.toFixed(4)}\t${codec.kind === 'ids' ? h.tokens.join(' ') : h.text}`);
          out(`P-${i}\t${h.positional_scores.map((p) => p.toFixed(4)).join(' ')}`);
        }
      });
    }
    return 0;
  }
  throw new ConfigError(`${ckpt} holds a ${loaded.className}, which does not generate text (mega generate needs a language model or a translation model)`);
}
