import { describe, expect, it } from 'vitest';
import { isUserError, MegaError } from '../src/errors.js';
import { DTypeError, IndexError, ShapeError, TensorError } from '../src/tensor/errors.js';
import { ConfigError, StateDictError } from '../src/nn/errors.js';
import { CheckpointError, FormatError } from '../src/io/errors.js';
import { DataError } from '../src/data/errors.js';
import { DistConfigError, DistError } from '../src/dist/errors.js';
import { UsageError } from '../src/cli/errors.js';
import { TrainingDivergedError } from '../src/train/trainer.js';

describe('one error base class', () => {
  const user = [ShapeError, ConfigError, StateDictError, CheckpointError, FormatError, DataError, DistConfigError, UsageError];
  it.each(user.map((c) => [c.name, c] as const))('%s is a user error (exit 2)', (name, C) => {
    const e = new C('bad input');
    expect(e).toBeInstanceOf(MegaError);
    expect(e.name).toBe(name);
    expect(e.kind).toBe('user');
    expect(isUserError(e)).toBe(true);
  });
  it('program errors are internal (exit 1)', () => {
    for (const e of [new TensorError('x'), new IndexError('x'), new DTypeError('x'), new DistError('x', 1), new TrainingDivergedError('x', 3, null)]) {
      expect(e).toBeInstanceOf(MegaError);
      expect(e.kind).toBe('internal');
      expect(isUserError(e)).toBe(false);
    }
    expect(isUserError(new Error('plain'))).toBe(false);
  });
  it('one throw may override its class kind and keeps its cause', () => {
    const cause = new Error('root');
    const e = new ConfigError('x', { kind: 'internal', cause });
    expect(e.kind).toBe('internal');
    expect(e.cause).toBe(cause);
  });
});
