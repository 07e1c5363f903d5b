/**
 * A model folder's files from a loaded model: `config.json` (arch, every model argument, task
 * facts, tokenizer), `model.safetensors` (the state dict under its PyTorch names) and `dict.txt`
 * (the vocabulary in fairseq's format, special symbols included). `mega export` writes them;
 * `loadModel(folder)` reads them back.
 */
import { encodeSafetensors } from '../io/safetensors-codec.js';
import type { RawTensor } from '../io/raw.js';
import { ConfigError } from '../nn/errors.js';
import type { ModelConfig } from './config.js';
import { MODEL_FOLDER_FILES } from './load.js';
import type { Pretrained } from './models.js';

/**
 * The files of `m`'s model folder, by name.
 * @throws ConfigError when the model has a tokenizer type but no vocabulary
 */
export function modelFolderFiles(m: Pretrained): Record<string, Uint8Array> {
  const enc = new TextEncoder();
  if (m.config.tokenizer.type !== 'none' && !m.tokenizer)
    throw new ConfigError(`arch ${m.config.arch}: the vocabulary is unknown; give it (a fairseq dict.txt)`);
  const config: ModelConfig = { ...m.config };
  const tensors: Record<string, RawTensor> = {};
  for (const [k, t] of Object.entries(m.model.stateDict())) {
    const data = t.toTypedArray();
    tensors[k] = { dtype: t.dtype, shape: [...t.shape], data: t.dtype === 'bool' ? new Uint8Array(data) : data } as RawTensor;
  }
  const files: Record<string, Uint8Array> = {
    [MODEL_FOLDER_FILES.config]: enc.encode(JSON.stringify(config, null, 2) + '\n'),
    [MODEL_FOLDER_FILES.weights]: encodeSafetensors(tensors, { format: config.format, arch: config.arch, task: config.task }),
  };
  if (m.tokenizer) files[MODEL_FOLDER_FILES.dict] = enc.encode(m.tokenizer.toDictText());
  return files;
}
