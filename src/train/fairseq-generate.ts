/**
 * fairseq-generate on a translation data folder with a fairseq checkpoint: beam search over the
 * `--gen-subset` split in fairseq's test order (sorted by target then source length, stable; no
 * permutation), batches of `--batch-size`, and fairseq's output lines (`S-`, `T-`, `H-`, `D-`,
 * `P-`; scores in base 2) and its corpus BLEU-4 on token ids (libbleu: leading pads and trailing
 * `</s>`/pads trimmed, clipped n-gram matches, no smoothing, a reference `<unk>` never matches).
 */
import { EOS, PAD, UNK, readTranslation, type Dictionary } from '../data/fairseq/index.js';
import type { EncoderOut, MegaModel } from '../mega/models/nmt.js';
import { ConfigError } from './errors.js';
import type { FairseqModel } from './fairseq-eval.js';
import { batchBySize, languagePairOrder } from '../data/fairseq/order.js';
import { beamSearch, type Hypothesis, type Seq2SeqDecoder } from './generate.js';

/** Options of `generateFairseq` (fairseq-generate names). */
export interface FairseqGenerateOptions {
  split: string;
  beam: number;
  nbest: number;
  batchSize: number;
  maxLenA: number;
  maxLenB: number;
  minLen: number;
  lenpen: number;
  unkpen: number;
  sourceLang?: string;
  targetLang?: string;
  /** `--remove-bpe`: the BPE continuation symbol to remove (e.g. `"@@ "`); BLEU is then scored on words. */
  removeBpe?: string;
}

/** Corpus BLEU statistics (libbleu). */
export interface BleuStats {
  reflen: number;
  predlen: number;
  match: number[];
  count: number[];
}

/** The output of one generation run. */
export interface FairseqGenerateResult {
  /** The printed lines, in fairseq's order (the BLEU line last). */
  lines: string[];
  /** Per sentence id, its hypotheses (natural-log scores, as fairseq keeps them). */
  hypotheses: Record<number, Hypothesis[]>;
  bleu: BleuStats;
  bleuLine: string;
}

/** libbleu's trim: leading pads, trailing `</s>` and pads. */
function trim(tokens: readonly number[]): number[] {
  let a = 0,
    b = tokens.length;
  while (a < b && tokens[a] === PAD) a++;
  while (b > a && (tokens[b - 1] === EOS || tokens[b - 1] === PAD)) b--;
  return tokens.slice(a, b);
}

/** Adds one sentence pair to the BLEU statistics (`<unk>` in the reference never matches). */
export function bleuAdd(s: BleuStats, ref: readonly number[], pred: readonly number[]): void {
  const r = trim(ref).map((t) => (t === UNK ? -999 : t));
  const p = trim(pred);
  s.reflen += r.length;
  s.predlen += p.length;
  for (let n = 1; n <= 4; n++) {
    const refCounts = new Map<string, number>();
    for (let i = 0; i + n <= r.length; i++) {
      const k = r.slice(i, i + n).join(',');
      refCounts.set(k, (refCounts.get(k) ?? 0) + 1);
    }
    for (let i = 0; i + n <= p.length; i++) {
      s.count[n - 1]! += 1;
      const k = p.slice(i, i + n).join(',');
      const c = refCounts.get(k) ?? 0;
      if (c > 0) {
        s.match[n - 1]! += 1;
        refCounts.set(k, c - 1);
      }
    }
  }
}

/** fairseq's `BLEU4 = ..., p1/p2/p3/p4 (BP=..., ratio=..., syslen=..., reflen=...)`. */
export function bleuString(s: BleuStats): string {
  const prec = s.match.map((m, i) => (s.count[i]! > 0 ? m / s.count[i]! : 0));
  const bp = s.predlen > 0 ? Math.min(1, Math.exp(1 - s.reflen / s.predlen)) : 0;
  const psum = prec.reduce((acc, p) => acc + (p > 0 ? Math.log(p) : -Infinity), 0);
  const score = bp * Math.exp(psum / 4) * 100;
  return (
    `BLEU4 = ${score.toFixed(2)}, ${prec.map((p) => (p * 100).toFixed(1)).join('/')} ` +
    `(BP=${bp.toFixed(3)}, ratio=${(s.predlen / s.reflen).toFixed(3)}, syslen=${s.predlen}, reflen=${s.reflen})`
  );
}

function toText(d: Dictionary, tokens: readonly number[], escapeUnk: boolean, bpe?: string): string {
  const s = tokens
    .filter((t) => t !== EOS && t !== PAD)
    .map((t) => (t === UNK && escapeUnk ? '<<unk>>' : (d.symbols[t] ?? String(t))))
    .join(' ');
  return bpe === undefined ? s : `${s} `.split(bpe).join('').trimEnd(); // fairseq's process_bpe_symbol
}

/** fairseq's `encode_line(..., add_if_not_exist=True)` over a growing word table (BLEU after --remove-bpe). */
function wordIds(table: Map<string, number>, text: string): number[] {
  const words = text.replace(/\s+/g, ' ').trim();
  const ids = (words === '' ? [] : words.split(' ')).map((w) => {
    if (!table.has(w)) table.set(w, table.size);
    return table.get(w)!;
  });
  return [...ids, EOS];
}

/** Python's `str(float)` for the H-/D- scores (shortest round-trip repr). */
function pyFloat(x: number): string {
  const s = String(x);
  return /[.e]/.test(s) || !Number.isFinite(x) ? s : `${s}.0`;
}

/**
 * Runs fairseq-generate's loop. @throws DataError / ConfigError for bad data or options
 */
export function generateFairseq(fm: FairseqModel, data: string, o: FairseqGenerateOptions): FairseqGenerateResult {
  if (fm.args.task !== 'translation')
    throw new ConfigError(`${fm.path}: args.task is ${JSON.stringify(fm.args.task)}; mega generate with a data folder needs a translation checkpoint`);
  const srcLang = o.sourceLang ?? String(fm.args.source_lang),
    tgtLang = o.targetLang ?? String(fm.args.target_lang);
  const r = readTranslation(data, o.split, srcLang, tgtLang);
  const V = fm.imp.spec.taskInfo.dictionary_size;
  if (V !== r.targetDictionary.size)
    throw new ConfigError(`${data}/dict.${tgtLang}.txt: ${r.targetDictionary.size} entries, but ${fm.path} was trained with ${String(V)}`);
  const mt = fm.imp.model as MegaModel;
  // fairseq's order for generation: no permutation, stable sorts by target then source length
  const src = r.examples.map((e) => e.tokens.length),
    tgt = r.examples.map((e) => e.target!.length);
  const order = languagePairOrder(src, tgt, 0, false);
  const batches = batchBySize(order, (i) => Math.max(src[i]!, tgt[i]!), { maxSentences: o.batchSize, maxTokens: null, multiple: 8 });
  const maxPos = fm.args.max_target_positions;
  const s2s: Seq2SeqDecoder<EncoderOut> = {
    encode: (s) => mt.encoder.forward(s),
    reorderEncoderOut: (enc, ord) => mt.reorderEncoderOut(enc, ord),
    step: (prefix, enc, state) => mt.decoder.forward(prefix, enc, { state, needAttn: false }).logits,
    reorderState: (state, ord) => mt.reorderIncrementalState(state, ord),
    maxDecoderPositions: typeof maxPos === 'number' && maxPos > 0 ? maxPos : undefined,
  };
  const lines: string[] = [];
  const hypotheses: Record<number, Hypothesis[]> = {};
  const bleu: BleuStats = { reflen: 0, predlen: 0, match: [0, 0, 0, 0], count: [0, 0, 0, 0] };
  const words = new Map(r.targetDictionary.symbols.map((w, i) => [w, i] as [string, number]));
  const bpe = o.removeBpe;
  for (const batch0 of batches) {
    // collate: rows by descending source length (stable)
    const batch = [...batch0].sort((a, b) => r.examples[b]!.tokens.length - r.examples[a]!.tokens.length);
    const hyps = beamSearch(
      s2s,
      batch.map((i) => Array.from(r.examples[i]!.tokens)),
      {
        beam: o.beam,
        leftPadSource: true,
        maxLenA: o.maxLenA,
        maxLenB: o.maxLenB,
        minLen: o.minLen,
        lenPenalty: o.lenpen,
        unkPenalty: o.unkpen,
      },
    );
    batch.forEach((id, j) => {
      const ex = r.examples[id]!;
      const hs = hyps[j]!;
      hypotheses[id] = hs;
      const targetStr = toText(r.targetDictionary, Array.from(ex.target!), true, bpe);
      lines.push(`S-${id}\t${toText(r.sourceDictionary, Array.from(ex.tokens), false, bpe)}`);
      lines.push(`T-${id}\t${targetStr}`);
      hs.slice(0, o.nbest).forEach((h, k) => {
        const text = toText(r.targetDictionary, h.tokens, false, bpe);
        const score = pyFloat(Math.fround(Math.fround(h.score) / Math.LN2)); // fairseq divides the f32 score tensor
        lines.push(`H-${id}\t${score}\t${text}`);
        lines.push(`D-${id}\t${score}\t${text}`);
        lines.push(`P-${id}\t${h.positionalScores.map((p) => (p / Math.LN2).toFixed(4)).join(' ')}`);
        if (k === 0) {
          if (bpe === undefined) bleuAdd(bleu, Array.from(ex.target!), h.tokens);
          else bleuAdd(bleu, wordIds(words, targetStr), wordIds(words, text));
        }
      });
    });
  }
  const bleuLine = `Generate ${o.split} with beam=${o.beam}: ${bleuString(bleu)}`;
  lines.push(bleuLine);
  return { lines, hypotheses, bleu, bleuLine };
}
