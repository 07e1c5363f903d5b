/**
 * The Node.js loader host (see types.ts): `fs` reads, fairseq `.pt` import, the ListOps
 * vocabulary, and the gpujs backend, each loaded only when asked for.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { listOpsDictionary } from '../../data/listops.js';
import { CheckpointError } from '../../io/errors.js';
import { setBackend } from '../../tensor/backend.js';
import { registerMemoryManager } from '../memory.js';
import { byteVocabulary, CLS_SYMBOL } from '../vocab.js';
import type { LoaderHost } from './types.js';

/** The Node.js host. */
export const host: LoaderHost = {
  name: 'node',
  async readFile(path) {
    try {
      return new Uint8Array(await readFile(path));
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      throw new CheckpointError(code === 'ENOENT' ? `${path}: no such file` : `cannot read ${path}: ${(e as Error).message}`, { cause: e });
    }
  },
  isFolder: async (path) => (await stat(path).catch(() => null))?.isDirectory() ?? false,
  exists: async (path) => (await stat(path).catch(() => null)) !== null,
  join: (...parts) => join(...parts),
  async importFairseq(bytes, label, dtype) {
    const { importFairseq } = await import('../../train/fairseq-import.js');
    const { decodeFairseqCheckpoint } = await import('../../io/pt.js');
    const imp = importFairseq(decodeFairseqCheckpoint(bytes, label), { dtype, label });
    return { model: imp.model, task: imp.spec.task, arch: imp.spec.arch, modelArgs: imp.spec.modelArgs, taskInfo: imp.spec.taskInfo };
  },
  taskVocabulary(task, size) {
    if (task !== 'listops') return byteVocabulary(task, size);
    const dict = listOpsDictionary();
    dict.addSymbol(CLS_SYMBOL);
    return dict.size === size ? { dict, tokenizer: { type: 'words', append_eos: true, ignore: ['(', ')'] } } : null;
  },
  async useBackend(name) {
    if (name === 'cpu') {
      setBackend('cpu');
      return { backend: 'cpu' };
    }
    const gpu = await import('../../tensor/backends/gpujs/index.js');
    registerMemoryManager('gpujs', { tidy: gpu.tidy, dispose: gpu.dispose, keep: (t) => gpu.keep(t as never) as typeof t, moveToDevice: gpu.moveToDevice });
    const sel = gpu.selectBackend(name);
    return { backend: sel.backend, ...(sel.reason ? { reason: sel.reason } : {}) };
  },
};
