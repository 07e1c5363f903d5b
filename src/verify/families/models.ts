/**
 * Golden adapters of the full models: LRAModel (`{logits, loss}` with `lra_cross_entropy`),
 * MegaLanguageModel (`{logits, loss}` with `cross_entropy`, or with an adaptive softmax
 * `{features, log_probs, loss}` with `adaptive_loss`; block-wise incremental evaluation)
 * and MegaModel (`{logits, attn, loss, nll_loss}` with `label_smoothed_cross_entropy`;
 * sequence-generator incremental decoding). `config` is the reference's argparse namespace,
 * `task` its dictionary. A loss is produced only when the case provides a `target`.
 */
import { noGrad, reshape } from '../../autograd/index.js';
import type { GoldenCase } from '../../io/golden.js';
import { IncrementalState } from '../../mega/incremental.js';
import type { TaskInfo } from '../../mega/models/common.js';
import { LRAModel, lraCrossEntropy } from '../../mega/models/lra.js';
import { MegaLanguageModel } from '../../mega/models/lm.js';
import { MegaModel } from '../../mega/models/nmt.js';
import { registerAdapter, type Named } from '../adapters.js';

function task(c: GoldenCase): TaskInfo {
  if (!c.task) throw new Error(`${c.case}: full-model case without a task`);
  return c.task;
}

registerAdapter('LRAModel', {
  build: (c, dtype) => new LRAModel(c.config, c.task ?? null, { dtype }),
  forward: (m, inputs) => {
    const logits = (m as LRAModel).forward(inputs.src_tokens, inputs.src_lengths);
    const out: Named = { logits };
    if (inputs.target) out.loss = lraCrossEntropy(logits, inputs.target);
    return out;
  },
});

registerAdapter('MegaLanguageModel', {
  build: (c, dtype) => new MegaLanguageModel(c.config, task(c), { dtype }),
  forward: (m, inputs) => {
    const lm = m as MegaLanguageModel;
    if (lm.adaptive) {
      const features = lm.decoder.features(inputs.src_tokens);
      const out: Named = { features, log_probs: lm.decoder.outputLayer(features) };
      if (inputs.target) out.loss = reshape(lm.adaptiveLoss(features, inputs.target), [1]); // the criterion returns a [1] tensor
      return out;
    }
    const logits = lm.forward(inputs.src_tokens);
    const out: Named = { logits };
    if (inputs.target) out.loss = lm.loss(logits, inputs.target);
    return out;
  },
  incremental: (m, _inputs, steps) =>
    noGrad(() => {
      const lm = m as MegaLanguageModel;
      const state = new IncrementalState();
      return steps.map((s) => ({ logits: lm.forward(s.src_tokens, state) }));
    }),
});

registerAdapter('MegaModel', {
  build: (c, dtype) => new MegaModel(c.config, task(c), { dtype }),
  forward: (m, inputs, c) => {
    const mt = m as MegaModel;
    const r = mt.forward(inputs.src_tokens, inputs.prev_output_tokens);
    const out: Named = { logits: r.logits };
    if (r.attn) out.attn = r.attn;
    if (inputs.target) {
      const l = mt.loss(r.logits, inputs.target, Number(c.options?.label_smoothing ?? 0));
      out.loss = l.loss;
      out.nll_loss = l.nllLoss;
    }
    return out;
  },
  incremental: (m, inputs, steps) =>
    noGrad(() => {
      const mt = m as MegaModel;
      const enc = mt.encoder.forward(inputs.src_tokens);
      const state = new IncrementalState();
      return steps.map((s) => {
        const r = mt.decoder.forward(s.prev_output_tokens, enc, { state });
        const o: Named = { logits: r.logits };
        if (r.attn) o.attn = r.attn;
        return o;
      });
    }),
});
