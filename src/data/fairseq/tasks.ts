/**
 * The folder layouts of the Mega release's fairseq tasks, read into examples.
 *
 * - `lra-text`: `DATA/src-bin/<split>` (+ `DATA/src1-bin/<split>` for two inputs) and
 *   `DATA/label-bin/<split>`, indexed datasets. The input dictionary is `src-bin/dict.txt` with
 *   `<CLS>` appended (the second input uses the same one); the class of an example is the index of
 *   its label symbol in `label-bin/dict.txt` minus the 4 specials (the label's line number, not its
 *   value). Inputs longer than `max_positions` are cut to their first `max_positions` tokens.
 * - `lra-image`: `DATA/input/<split>.src` (one image per line, pixels 0..255) and
 *   `DATA/label/<split>.label` (one class index per line); pixels become `(p/255 − mean)/std` (f32).
 * - `language_modeling`: `DATA/dict.txt` and `DATA/<split>` (indexed): one token stream cut into
 *   blocks (`tokenBlocks`).
 * - `translation`: `DATA/dict.<lang>.txt` and `DATA/<split>.<src>-<tgt>.<lang>` (indexed).
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { TokenExample, ValueExample } from '../batch.js';
import { DataError } from '../errors.js';
import { bytesToString, readBytes } from '../files.js';
import { Dictionary, EOS, readDictionary } from './dictionary.js';
import { readIndexedDataset, type IndexedDataset } from './indexed.js';

/** The symbol the lra-text task appends to the input dictionary. */
export const CLS_SYMBOL = '<CLS>';

function dataset(dir: string, name: string, split: string): IndexedDataset {
  const prefix = join(dir, name === '' ? split : join(name, split));
  if (!existsSync(`${prefix}.idx`) && !existsSync(`${prefix}.bin`)) {
    throw new DataError(`${dir}: no ${split} split (expected ${prefix}.bin and ${prefix}.idx)`);
  }
  return readIndexedDataset(prefix);
}

function checkTokens(ds: IndexedDataset, dict: Dictionary, dictPath: string): void {
  for (let i = 0; i < ds.length; i++) {
    const t = ds.get(i);
    for (let j = 0; j < t.length; j++) {
      if (t[j]! >= dict.size) throw new DataError(`${ds.prefix}.bin: sentence ${i} has token id ${t[j]}, outside ${dictPath} (expected < ${dict.size})`);
    }
  }
}

/** A loaded lra-text split. */
export interface LraTextSplit {
  /** Input dictionary (dict.txt + `<CLS>`). */
  dictionary: Dictionary;
  /** Label dictionary (`label-bin/dict.txt`). */
  labelDictionary: Dictionary;
  /** Examples in file order: `tokens` (cut), `tokens2` (second input), `label` (class index). */
  examples: TokenExample[];
  /** Whether there is a second input (`src1-bin`). */
  dual: boolean;
}

/**
 * Reads an lra-text split.
 * @param opts `maxPositions` (cut length), `prependCls` (`--sen-rep-type cls`)
 * @throws DataError for missing / malformed files, token ids outside the dictionary, labels that
 *   are not a label-dictionary symbol followed by `</s>`
 */
export function readLraText(dir: string, split: string, opts: { maxPositions: number; prependCls?: boolean }): LraTextSplit {
  const dictPath = join(dir, 'src-bin', 'dict.txt');
  const labelDictPath = join(dir, 'label-bin', 'dict.txt');
  for (const p of [dictPath, labelDictPath])
    if (!existsSync(p)) throw new DataError(`${p}: no such file (an lra-text data folder has src-bin/ and label-bin/, each with dict.txt)`);
  const dictionary = readDictionary(dictPath);
  const cls = dictionary.add(CLS_SYMBOL);
  const labelDictionary = readDictionary(labelDictPath);
  const src = dataset(dir, 'src-bin', split);
  checkTokens(src, dictionary, dictPath);
  const dual = existsSync(join(dir, 'src1-bin'));
  const src1 = dual ? dataset(dir, 'src1-bin', split) : null;
  if (src1) checkTokens(src1, dictionary, dictPath);
  const labels = dataset(dir, 'label-bin', split);
  for (const d of [src1, labels]) {
    if (d && d.length !== src.length) throw new DataError(`${d.prefix}.idx: ${d.length} sentences (expected ${src.length}, as ${src.prefix}.idx)`);
  }
  const prep = (t: Int32Array): Int32Array => {
    let x = t;
    if (opts.prependCls) {
      x = new Int32Array(t.length + 1);
      x[0] = cls;
      x.set(t, 1);
    }
    return x.length > opts.maxPositions ? x.slice(0, opts.maxPositions) : x.slice();
  };
  const examples: TokenExample[] = [];
  for (let i = 0; i < src.length; i++) {
    const lab = Array.from(labels.get(i)).filter((t) => t !== EOS);
    const id = lab[0];
    if (lab.length !== 1 || id === undefined || id < 4 || id >= labelDictionary.size) {
      throw new DataError(
        `${labels.prefix}.bin: sentence ${i} is [${Array.from(labels.get(i)).join(', ')}] ` +
          `(expected one label id in 4..${labelDictionary.size - 1} of ${labelDictPath}, then </s>)`,
      );
    }
    const ex: TokenExample = { tokens: prep(src.get(i)), label: id - 4 };
    if (src1) ex.tokens2 = prep(src1.get(i));
    examples.push(ex);
  }
  return { dictionary, labelDictionary, examples, dual };
}

/**
 * Reads an lra-image split: `input/<split>.src` and `label/<split>.label`.
 * @throws DataError for missing files, non-integer pixels or labels, pixels outside 0..255, images
 *   of different lengths, line counts that differ, a label outside `0..numClasses-1`
 */
export function readLraImage(dir: string, split: string, opts: { mean: number; std: number; maxPositions: number; numClasses: number }): ValueExample[] {
  const srcPath = join(dir, 'input', `${split}.src`);
  const labelPath = join(dir, 'label', `${split}.label`);
  if (!existsSync(srcPath)) throw new DataError(`${dir}: no ${split} split (expected ${srcPath} and ${labelPath})`);
  if (!existsSync(labelPath)) throw new DataError(`${labelPath}: no such file (expected one class index per line for ${srcPath})`);
  const read = (p: string): string[] => {
    const lines = bytesToString(readBytes(p)).split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return lines;
  };
  const images = read(srcPath);
  const labels = read(labelPath);
  if (images.length !== labels.length) throw new DataError(`${labelPath}: ${labels.length} lines (expected ${images.length}, one per image of ${srcPath})`);
  const mean = Math.fround(opts.mean),
    std = Math.fround(opts.std);
  let L = -1;
  return images.map((line, i) => {
    const words = line
      .trim()
      .split(/\s+/)
      .filter((w) => w !== '');
    if (L < 0) L = words.length;
    if (words.length !== L) throw new DataError(`${srcPath}:${i + 1}: ${words.length} pixels (expected ${L}, as line 1)`);
    const n = Math.min(words.length, opts.maxPositions);
    const values = new Float32Array(n);
    for (let j = 0; j < n; j++) {
      const p = Number(words[j]);
      if (!/^\d+$/.test(words[j]!) || p > 255)
        throw new DataError(`${srcPath}:${i + 1}: pixel ${j + 1} is ${JSON.stringify(words[j])} (expected an integer 0..255)`);
      values[j] = Math.fround(Math.fround(Math.fround(p / 255) - mean) / std);
    }
    const lt = labels[i]!.trim();
    const label = Number(lt);
    if (!/^-?\d+$/.test(lt) || label < 0 || label >= opts.numClasses) {
      throw new DataError(`${labelPath}:${i + 1}: label ${JSON.stringify(lt)} (expected a class index 0..${opts.numClasses - 1})`);
    }
    return { values, label };
  });
}

/** A language-modelling split: dictionary and the indexed dataset. */
export interface LmSplit {
  dictionary: Dictionary;
  data: IndexedDataset;
}

/** Reads `DATA/dict.txt` and `DATA/<split>` (indexed). @throws DataError */
export function readLm(dir: string, split: string): LmSplit {
  const dictPath = join(dir, 'dict.txt');
  if (!existsSync(dictPath)) throw new DataError(`${dictPath}: no such file (a language_modeling data folder has dict.txt and <split>.bin/.idx)`);
  const dictionary = readDictionary(dictPath);
  const data = dataset(dir, '', split);
  checkTokens(data, dictionary, dictPath);
  return { dictionary, data };
}

/** One LM block: `source` (previous token of each target), `target`. */
export interface LmBlock {
  source: Int32Array;
  target: Int32Array;
}

/**
 * fairseq's `TokenBlockDataset` with `include_targets` (past target as source):
 * - `none`: the stream cut every `blockSize` tokens;
 * - `complete`: runs of whole sentences, a block taking sentences while it stays within its size
 *   (a longer sentence is a block of its own); `blockSizes` gives each block's size in turn (train's
 *   variant sizes), else `blockSize` for all.
 * The source of a block is the token before each target token in the stream (`</s>` before the first).
 */
export function tokenBlocks(data: IndexedDataset, blockSize: number, mode: 'none' | 'complete', blockSizes?: ArrayLike<number>): LmBlock[] {
  let total = 0;
  for (const s of data.sizes) total += s;
  const stream = new Int32Array(total);
  let o = 0;
  for (let i = 0; i < data.length; i++) {
    stream.set(data.get(i), o);
    o += data.sizes[i]!;
  }
  const slices: [number, number][] = [];
  if (mode === 'none') {
    for (let s = 0; s < total; s += blockSize) slices.push([s, Math.min(total, s + blockSize)]);
  } else {
    let tok = 0,
      cur = 0,
      k = 0;
    let size = blockSizes ? blockSizes[0]! : blockSize;
    for (let i = 0; i < data.length;) {
      const s = data.sizes[i]!;
      if (cur + s <= size || cur === 0) {
        cur += s;
        i++;
      } else {
        slices.push([tok, tok + cur]);
        tok += cur;
        cur = 0;
        if (blockSizes) size = blockSizes[++k]!;
      }
    }
    if (cur > 0) slices.push([tok, tok + cur]);
  }
  return slices.map(([a, b]) => {
    const source = new Int32Array(b - a);
    source[0] = a === 0 ? EOS : stream[a - 1]!;
    source.set(stream.subarray(a, b - 1), 1);
    return { source, target: stream.slice(a, b) };
  });
}

/**
 * The block size of `--valid-block` (`size:N` or `splits:K` = ceil(tokens / K)).
 * @throws DataError for another form
 */
export function validBlockSize(spec: string, data: IndexedDataset): number {
  const m = /^(size|splits):(\d+)$/.exec(spec);
  if (!m || Number(m[2]) < 1) throw new DataError(`--valid-block ${JSON.stringify(spec)}: expected size:N or splits:K (positive integers)`);
  if (m[1] === 'size') return Number(m[2]);
  let total = 0;
  for (const s of data.sizes) total += s;
  return Math.ceil(total / Number(m[2]));
}

/** A translation split. */
export interface TranslationSplit {
  sourceDictionary: Dictionary;
  targetDictionary: Dictionary;
  /** `tokens` = source (`</s>` included), `target` = target, `prevOutputTokens` = `[</s>, t1 … tn-1]`. */
  examples: TokenExample[];
}

/**
 * Reads `DATA/dict.<src>.txt`, `dict.<tgt>.txt`, `<split>.<src>-<tgt>.<src|tgt>`.
 * @throws DataError for missing / malformed files, differing sentence counts, ids outside the dictionaries
 */
export function readTranslation(dir: string, split: string, src: string, tgt: string): TranslationSplit {
  const dp = (l: string) => join(dir, `dict.${l}.txt`);
  for (const l of [src, tgt])
    if (!existsSync(dp(l))) throw new DataError(`${dp(l)}: no such file (a translation data folder has dict.${src}.txt and dict.${tgt}.txt)`);
  const sourceDictionary = readDictionary(dp(src));
  const targetDictionary = readDictionary(dp(tgt));
  const pair = `${split}.${src}-${tgt}`;
  let s: IndexedDataset, t: IndexedDataset;
  if (!existsSync(join(dir, `${pair}.${src}.idx`)) && existsSync(join(dir, `${split}.${tgt}-${src}.${src}.idx`))) {
    s = dataset(dir, '', `${split}.${tgt}-${src}.${src}`);
    t = dataset(dir, '', `${split}.${tgt}-${src}.${tgt}`);
  } else {
    s = dataset(dir, '', `${pair}.${src}`);
    t = dataset(dir, '', `${pair}.${tgt}`);
  }
  checkTokens(s, sourceDictionary, dp(src));
  checkTokens(t, targetDictionary, dp(tgt));
  if (s.length !== t.length) throw new DataError(`${t.prefix}.idx: ${t.length} sentences (expected ${s.length}, as ${s.prefix}.idx)`);
  const examples: TokenExample[] = [];
  for (let i = 0; i < s.length; i++) {
    const target = t.get(i).slice();
    const prev = new Int32Array(target.length);
    prev[0] = EOS;
    prev.set(target.subarray(0, target.length - 1), 1);
    examples.push({ tokens: s.get(i).slice(), target, prevOutputTokens: prev });
  }
  return { sourceDictionary, targetDictionary, examples };
}
