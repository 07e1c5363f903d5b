/**
 * The browser loader host (see types.ts): no file system (models come from URLs or bytes), no
 * fairseq `.pt` import, the CPU backend only.
 */
import { CheckpointError } from '../../io/errors.js';
import { ConfigError } from '../../nn/errors.js';
import { setBackend } from '../../tensor/backend.js';
import { byteVocabulary } from '../vocab.js';
import type { LoaderHost } from './types.js';

/** The browser host. */
export const host: LoaderHost = {
  name: 'browser',
  readFile: async (path) => {
    throw new CheckpointError(`${path}: a browser cannot read local paths; pass a URL (absolute or relative to the page) or the bytes`);
  },
  isFolder: async () => false,
  exists: async () => false,
  join: (...parts) => parts.join('/').replace(/\/+/g, '/'),
  importFairseq: async (_bytes, label) => {
    throw new CheckpointError(`${label}: fairseq .pt checkpoints load in Node.js only; convert it there with \`mega export\` and load the model folder`);
  },
  taskVocabulary: (task, size) => byteVocabulary(task, size),
  useBackend: async (name) => {
    if (name !== 'cpu' && name !== 'auto')
      throw new ConfigError(`backend '${name}': the browser build runs the CPU kernels (WebAssembly SIMD, Web Workers) only`);
    setBackend('cpu');
    return { backend: 'cpu', ...(name === 'auto' ? { reason: 'the browser build has the CPU backend only' } : {}) };
  },
};
