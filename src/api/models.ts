/**
 * Typed model classes of the library: each wraps one of the four Mega models with its config and
 * tokenizer, so that `forward` is typed per family and the task helpers (`classify`, `generate`,
 * `embed`) know how to feed it.
 */
import type { IncrementalState } from '../mega/incremental.js';
import type { LRAModel, SecondInput } from '../mega/models/lra.js';
import type { MegaLanguageModel } from '../mega/models/lm.js';
import type { EncoderOut, MegaModel } from '../mega/models/nmt.js';
import type { SCRawModel } from '../mega/models/speech.js';
import { ConfigError } from '../nn/errors.js';
import type { Module } from '../nn/module.js';
import type { FloatDType } from '../tensor/dtype.js';
import type { Tensor } from '../tensor/tensor.js';
import type { ModelConfig } from './config.js';
import { dispose } from './memory.js';
import type { Tokenizer } from './tokenizer.js';

/** What every loaded model has. */
abstract class PretrainedBase<M extends Module> {
  /**
   * @param model the Mega model, in eval mode, with its weights
   * @param config the model folder's config (arch, model arguments, task facts, tokenizer)
   * @param tokenizer text ↔ ids, or null when the vocabulary is unknown (then pass ids)
   * @param dtype the computation precision
   */
  constructor(
    model: M,
    readonly config: ModelConfig,
    readonly tokenizer: Tokenizer | null,
    readonly dtype: FloatDType,
  ) {
    this.current = model;
  }

  private current: M | null;

  /** The Mega model (PyTorch state-dict names). @throws ConfigError after `dispose()` */
  get model(): M {
    if (!this.current) throw new ConfigError(`this ${this.config.arch} model was disposed`);
    return this.current;
  }

  /**
   * Frees the weights: device buffers at once on the GPU; on the CPU the model is dropped so the
   * garbage collector can take it even while this object is still referenced. Using the model
   * afterwards throws.
   */
  dispose(): void {
    if (!this.current) return;
    dispose(this.current.stateDict());
    this.current = null;
  }

  /** Number of parameters. */
  get numParameters(): number {
    return this.model.parameters().reduce((n, p) => n + p.size, 0);
  }
}

/** A sequence classifier (the LRA models: ListOps, text, retrieval, images as pixel sequences). */
export class SequenceClassifier extends PretrainedBase<LRAModel> {
  /** Discriminant of {@link Pretrained}. */
  readonly kind = 'classifier' as const;
  /** Whether inputs are token ids (text) or values (pixels). */
  get inputType(): 'text' | 'image' {
    return this.config.model_args.input_type === 'image' ? 'image' : 'text';
  }
  /** Whether the model compares two documents (retrieval: the classifier reads both representations). */
  get dualInput(): boolean {
    return this.config.task === 'retrieval';
  }
  /** Number of classes. */
  get numClasses(): number {
    return this.config.model_args.sentence_class_num as number;
  }
  /** tokens `B × L` (i32 ids, or values for images) with lengths `[B]` → logits `B × classes`. */
  forward(tokens: Tensor, lengths: Tensor, second?: SecondInput): Tensor {
    return this.model.forward(tokens, lengths, second);
  }
}

/** A decoder-only language model. */
export class LanguageModel extends PretrainedBase<MegaLanguageModel> {
  /** Discriminant of {@link Pretrained}. */
  readonly kind = 'lm' as const;
  /** tokens `B × T` → logits `B × T × V` (log-probabilities for an adaptive-softmax model); with `state`, incremental (only the new tokens). */
  forward(tokens: Tensor, state: IncrementalState | null = null): Tensor {
    return this.model.forward(tokens, state);
  }
}

/** An encoder–decoder translation model. */
export class Translator extends PretrainedBase<MegaModel> {
  /** Discriminant of {@link Pretrained}. */
  readonly kind = 'translation' as const;
  /** src `B × S`, previous output tokens `B × T` → logits `B × T × V` (teacher forcing). */
  forward(srcTokens: Tensor, prevOutputTokens: Tensor): Tensor {
    return this.model.forward(srcTokens, prevOutputTokens).logits;
  }
  /** The encoder's output for src `B × S` (`out`: `S × B × D`). */
  encode(srcTokens: Tensor): EncoderOut {
    return this.model.encoder.forward(srcTokens);
  }
}

/** A raw-waveform audio classifier (Speech Commands). */
export class AudioClassifier extends PretrainedBase<SCRawModel> {
  /** Discriminant of {@link Pretrained}. */
  readonly kind = 'audio' as const;
  /** Number of classes. */
  get numClasses(): number {
    return this.config.model_args.sentence_class_num as number;
  }
  /** Standardised samples `B × L` → logits `B × classes`. */
  forward(x: Tensor): Tensor {
    return this.model.forward(x);
  }
}

/** Any loaded model; switch on `kind`. */
export type Pretrained = SequenceClassifier | LanguageModel | Translator | AudioClassifier;
