/**
 * What loading needs from the host: files and folders (Node), fairseq `.pt` import and the GPU
 * backend (Node only), the ListOps vocabulary. `node.ts` by default; bundlers building for the
 * browser swap in `browser.ts` (package.json `browser` map), which keeps the browser bundle free of
 * Node built-ins.
 */
import type { MegaAnyModel } from '../../mega/models/presets.js';
import type { FloatDType } from '../../tensor/dtype.js';
import type { Vocabulary } from '../vocab.js';

/** A fairseq checkpoint imported by the host. */
export interface ImportedCheckpoint {
  model: MegaAnyModel;
  task: string;
  arch: string;
  modelArgs: Record<string, unknown>;
  taskInfo: Record<string, unknown>;
}

/** The host services of the loader. */
export interface LoaderHost {
  /** `node` or `browser`. */
  readonly name: 'node' | 'browser';
  /** Reads a local file. @throws CheckpointError naming the path */
  readFile(path: string): Promise<Uint8Array>;
  /** Whether a local path is a folder (false when absent). */
  isFolder(path: string): Promise<boolean>;
  /** Whether a local path exists. */
  exists(path: string): Promise<boolean>;
  /** Joins path segments. */
  join(...parts: string[]): string;
  /** Imports a fairseq `.pt` checkpoint (zip bytes). @throws CheckpointError / ConfigError */
  importFairseq(bytes: Uint8Array, label: string, dtype: FloatDType): Promise<ImportedCheckpoint>;
  /** The vocabulary of a task's training (null when unknown). */
  taskVocabulary(task: string, size: number): Vocabulary | null;
  /** Starts a compute backend (`cpu`, `gpujs`, `auto`). @throws MegaError naming missing packages */
  useBackend(name: string): Promise<{ backend: string; reason?: string }>;
}
