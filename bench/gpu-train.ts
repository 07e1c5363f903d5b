/**
 * One training step of an LRA model on a backend, for `bench/gpu-check.sh`: forward, loss,
 * backward, gradient clipping and Adam, with the parameters on the device for gpujs
 * (`moveToDevice`; clipping and Adam on the device). Reports ms per step and the host↔device
 * transfers of a step (after a first, warm-up step).
 */
import { backward } from '../src/autograd/index.js';
import { lraCrossEntropy, type LRAModel } from '../src/mega/models/lra.js';
import { buildModel } from '../src/mega/models/presets.js';
import { getBackend, setBackend } from '../src/tensor/backend.js';
import { GpuDevice, moveToDevice, tidy } from '../src/tensor/backends/gpujs/index.js';
import { fromStorage } from '../src/tensor/tensor.js';
import { Generator } from '../src/tensor/random.js';
import { Adam, clipGradNorm, clipGradNormDevice } from '../src/train/optim.js';

/** What one measured step did. */
export interface TrainStepResult {
  arch: string;
  backend: string;
  B: number;
  L: number;
  msPerStep: number;
  tokensPerS: number;
  loss: number;
  transfers: { uploads: number; uploadBytes: number; readbacks: number; readbackBytes: number } | null;
}

/**
 * Times `steps` training steps (after one warm-up step) of `arch` (an LRA text preset such as
 * `mega_lra_imdb`) on batches of B sequences of L tokens (a new batch every step).
 */
export function trainStep(arch: string, backend: 'cpu' | 'gpujs', B: number, L: number, steps = 2): TrainStepResult {
  const prev = getBackend();
  setBackend(backend);
  try {
    const task = { dictionary_size: 256, pad: 1, bos: 0, eos: 2, unk: 3 };
    const model = buildModel(arch, { dropout: 0, attention_dropout: 0, hidden_dropout: 0, activation_dropout: 0 }, task, {
      dtype: 'f32',
      gen: new Generator(1),
    }) as LRAModel;
    model.train(true);
    const params = [...new Set(model.parameters())];
    if (backend === 'gpujs') moveToDevice(params);
    const opt = new Adam(params, { lr: 1e-4, betas: [0.9, 0.98], eps: 1e-8, weightDecay: 0.01 });
    const gen = new Generator(2);
    const batch = () => ({
      tokens: fromStorage(
        Int32Array.from({ length: B * L }, () => 4 + gen.int(252)),
        [B, L],
      ),
      lengths: fromStorage(
        Int32Array.from({ length: B }, () => L),
        [B],
      ),
      target: fromStorage(
        Int32Array.from({ length: B }, () => gen.int(2)),
        [B],
      ),
    });
    const d = backend === 'gpujs' ? GpuDevice.get() : null;
    let loss = 0,
      ms = 0;
    let transfers: TrainStepResult['transfers'] = null;
    for (let s = 0; s <= steps; s++) {
      const bt = batch();
      const before = d ? { ...d.counters } : null;
      const t0 = performance.now();
      loss = tidy(() => {
        const l = lraCrossEntropy(model.forward(bt.tokens, bt.lengths), bt.target);
        backward(l);
        if (backend === 'gpujs') clipGradNormDevice(params, 1);
        else clipGradNorm(params, 1);
        opt.step();
        opt.zeroGrad();
        return l.item();
      });
      if (s > 0) ms += performance.now() - t0;
      if (d && before && s === steps) {
        transfers = {
          uploads: d.counters.uploads - before.uploads,
          uploadBytes: d.counters.uploadBytes - before.uploadBytes,
          readbacks: d.counters.readbacks - before.readbacks,
          readbackBytes: d.counters.readbackBytes - before.readbackBytes,
        };
      }
    }
    const msPerStep = ms / steps;
    return { arch, backend, B, L, msPerStep, tokensPerS: (B * L) / (msPerStep / 1000), loss, transfers };
  } finally {
    setBackend(prev);
  }
}
