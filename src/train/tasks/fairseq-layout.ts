/**
 * Training tasks reading the Mega release's fairseq data folders (`data-bin`), recognised by their
 * layout: `src-bin/` + `label-bin/` (lra-text), `input/` + `label/` (lra-image), `dict.txt` +
 * `train.idx` (language_modeling), `dict.<src>.txt` + `<split>.<src>-<tgt>.<lang>.idx` (translation).
 * The readers are `src/data/fairseq/`; this file turns their examples into a task's splits.
 *
 * LM training blocks: `--sample-break-mode complete` blocks of `--variant-block-multiple-min` ×
 * `decoder_chunk_size` tokens (fairseq draws each block's multiple with numpy's generator when
 * `--variant-block-multiple-max` is larger; that draw is not reproduced here); valid/test blocks
 * follow `--valid-block`.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Example } from '../../data/batch.js';
import { DataError } from '../../data/errors.js';
import { PAD, readLm, readLraImage, readLraText, readTranslation, tokenBlocks, validBlockSize } from '../../data/fairseq/index.js';
import { maxInputLength } from '../arch.js';
import { ConfigError } from '../errors.js';
import { checkLabels, dataset } from './common.js';
import type { Split, TaskArgs, TaskData } from './types.js';

/** The fairseq layout of a data folder, if it is one. */
export function fairseqLayout(dir: unknown): 'lra-text' | 'lra-image' | 'language_modeling' | 'translation' | null {
  if (typeof dir !== 'string' || !existsSync(dir)) return null;
  if (existsSync(join(dir, 'src-bin')) && existsSync(join(dir, 'label-bin'))) return 'lra-text';
  if (existsSync(join(dir, 'input')) && existsSync(join(dir, 'label'))) return 'lra-image';
  if (existsSync(join(dir, 'dict.txt')) && existsSync(join(dir, 'train.idx'))) return 'language_modeling';
  try {
    if (readdirSync(dir).some((f) => /^dict\.[^.]+\.txt$/.test(f))) return 'translation';
  } catch {
    return null;
  }
  return null;
}

/**
 * lra-image inputs are not padded: with a chunk size below the image length, the length must be a
 * multiple of it (the reference rejects other lengths). @throws ConfigError
 */
export function checkImageChunk(L: number, chunk: unknown, what: string): void {
  const C = typeof chunk === 'number' ? chunk : -1;
  if (C > 0 && L > C && L % C !== 0)
    throw new ConfigError(`${what}: images of ${L} pixels are not a multiple of the chunk size ${C} (image inputs cannot be padded)`);
}

/** Loads the splits of a task from a fairseq data folder, or returns null when `args.data` is not one. */
export function loadFairseqLayout(task: string, args: TaskArgs, splits: readonly Split[], modelArgs: Readonly<Record<string, unknown>>): TaskData | null {
  const dir = args.data as string;
  const layout = fairseqLayout(dir);
  if (layout === null) return null;
  const want: Record<string, string> = {
    listops: 'lra-text',
    text: 'lra-text',
    retrieval: 'lra-text',
    image: 'lra-image',
    lm: 'language_modeling',
    translation: 'translation',
  };
  if (want[task] !== layout)
    throw new ConfigError(`${dir}: a fairseq ${layout} data folder, but the task is ${task} (expected a ${want[task] ?? 'different'} folder)`);
  const out: TaskData['splits'] = {};
  switch (layout) {
    case 'lra-text': {
      const numClasses = modelArgs.sentence_class_num as number;
      const maxPositions = maxInputLength('lra', modelArgs).source;
      let size = 0;
      for (const s of splits) {
        const r = readLraText(dir, s, { maxPositions, prependCls: modelArgs.sen_rep_type === 'cls' });
        if (task === 'retrieval' && !r.dual) throw new DataError(`${dir}: no src1-bin/ (the retrieval task needs two inputs)`);
        checkLabels(r.examples, numClasses, `${dir}/label-bin/${s}`);
        size = r.dictionary.size;
        out[s] = dataset<Example>(r.examples, `${dir} ${s}`);
      }
      return { splits: out, taskInfo: { dictionary_size: size, pad: PAD }, numClasses, source: dir };
    }
    case 'lra-image': {
      const numClasses = modelArgs.sentence_class_num as number;
      for (const s of splits) {
        const ex = readLraImage(dir, s, {
          mean: args.pixel_mean as number,
          std: args.pixel_std as number,
          maxPositions: maxInputLength('lra', modelArgs).source,
          numClasses,
        });
        checkImageChunk(ex[0]?.values.length ?? 0, modelArgs.chunk_size, `${dir}/input/${s}.src`);
        out[s] = dataset<Example>(ex, `${dir} ${s}`);
      }
      return { splits: out, taskInfo: null, numClasses, source: dir };
    }
    case 'language_modeling': {
      let size = 0;
      const C = (modelArgs.decoder_chunk_size as number | undefined) ?? -1;
      for (const s of splits) {
        const { dictionary, data } = readLm(dir, s);
        size = dictionary.size;
        const mode = (args.sample_break_mode as 'none' | 'complete' | undefined) ?? 'complete';
        const block =
          s === 'train'
            ? C > 0
              ? C * ((args.variant_block_multiple_min as number | undefined) ?? 1)
              : (args.tokens_per_sample as number)
            : validBlockSize((args.valid_block as string | undefined) ?? 'size:100000000', data);
        out[s] = dataset<Example>(
          tokenBlocks(data, block, mode).map((b) => ({ tokens: b.source, target: b.target })),
          `${dir} ${s}`,
        );
      }
      return { splits: out, taskInfo: { dictionary_size: size, pad: PAD }, source: dir };
    }
    case 'translation': {
      const src = args.source_lang as string | undefined,
        tgt = args.target_lang as string | undefined;
      if (!src || !tgt) throw new ConfigError(`${dir}: a fairseq translation folder; give -s SRC -t TGT (--source-lang / --target-lang)`);
      let size = 0;
      for (const s of splits) {
        const r = readTranslation(dir, s, src, tgt);
        if (r.sourceDictionary.size !== r.targetDictionary.size)
          throw new ConfigError(
            `${dir}: dict.${src}.txt and dict.${tgt}.txt differ in size; mega-ts translation models use one joined dictionary (--joined-dictionary)`,
          );
        size = r.sourceDictionary.size;
        out[s] = dataset<Example>(r.examples, `${dir} ${s}`);
      }
      return { splits: out, taskInfo: { dictionary_size: size, pad: PAD }, source: dir };
    }
  }
}
