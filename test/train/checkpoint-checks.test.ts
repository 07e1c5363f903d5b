/**
 * checkStoredSpec: a checkpoint of a CPU preset stores the preset name as its metadata arch and
 * the reference arch it is built from in its model args; that pair is consistent, any other
 * disagreement is refused.
 */
import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../../src/io/errors.js';
import type { RawTensor } from '../../src/io/raw.js';
import { buildModelFromArgs } from '../../src/mega/models/presets.js';
import { resolveModelArgs } from '../../src/train/arch.js';
import { checkStoredSpec } from '../../src/train/checkpoint-checks.js';

describe('checkStoredSpec', () => {
  it('accepts a CPU preset name with its base arch in the model args; refuses a different arch', () => {
    const modelArgs = resolveModelArgs('mega_lm_adaptive_tiny', 'lm', {});
    expect(modelArgs.arch).toBe('mega_lm_adaptive_big');
    const model = buildModelFromArgs(modelArgs, { dictionary_size: 260, pad: 1 });
    const tensors: Record<string, RawTensor> = Object.fromEntries(
      Object.entries(model.stateDict()).map(([k, t]) => [k, { dtype: 'f32', shape: [...t.shape], data: t.toTypedArray() as Float32Array }]),
    );
    expect(() => checkStoredSpec('ck.safetensors', 'lm', 'mega_lm_adaptive_tiny', modelArgs, tensors)).not.toThrow();
    expect(() => checkStoredSpec('ck.safetensors', 'lm', 'mega_lm_tiny', modelArgs, tensors)).toThrow(CheckpointError);
    expect(() => checkStoredSpec('ck.safetensors', 'lm', 'mega_lm_tiny', modelArgs, tensors)).toThrow(
      /metadata arch = "mega_lm_tiny" but model_args.arch = "mega_lm_adaptive_big"/,
    );
  });
});
