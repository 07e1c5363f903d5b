/** WAV files that lie about themselves are refused with a message that says what is wrong (issue 15). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { parseWav, readSpeechCommands } from '../../src/data/wav.js';
import { tempDir } from './helpers.js';

const t = tempDir();
afterAll(() => t.cleanup());

/** A mono 16-bit WAV: `n` samples at `rate`; the data chunk declares `declared` bytes (default: what is there). */
function wav(n: number, { rate = 16000, declared }: { rate?: number; declared?: number } = {}): Buffer {
  const b = Buffer.alloc(44 + 2 * n);
  b.write('RIFF', 0, 'ascii');
  b.writeUInt32LE(36 + 2 * n, 4);
  b.write('WAVEfmt ', 8, 'ascii');
  b.writeUInt32LE(16, 16);
  b.writeUInt16LE(1, 20);
  b.writeUInt16LE(1, 22);
  b.writeUInt32LE(rate, 24);
  b.writeUInt32LE(rate * 2, 28);
  b.writeUInt16LE(2, 32);
  b.writeUInt16LE(16, 34);
  b.write('data', 36, 'ascii');
  b.writeUInt32LE(declared ?? 2 * n, 40);
  for (let i = 0; i < n; i++) b.writeInt16LE((i * 37) % 1000, 44 + 2 * i);
  return b;
}

describe('WAV trust', () => {
  it('a header cut inside the fmt chunk says the file is truncated (not "fmt chunk of 16 bytes (expected >= 16)")', () => {
    const cut = wav(10).subarray(0, 20);
    expect(() => parseWav(cut, 'cut.wav')).toThrow(DataError);
    expect(() => parseWav(cut, 'cut.wav')).toThrow(/^cut\.wav: truncated: fmt chunk declares 16 bytes but 0 are present$/);
  });

  it('a data chunk with fewer bytes than it declares is refused', () => {
    const short = wav(50, { declared: 200 });
    expect(() => parseWav(short, 'short.wav')).toThrow(/short\.wav: truncated: data chunk declares 200 bytes but 100 are present/);
  });

  it('a data chunk claiming 4 GB with 100 bytes present is refused', () => {
    const huge = wav(50, { declared: 0xffffffff });
    expect(() => parseWav(huge, 'huge.wav')).toThrow(/huge\.wav: truncated: data chunk declares 4294967295 bytes but 100 are present/);
  });

  it('a data chunk that ends inside a frame is refused', () => {
    const b = wav(3, { declared: 5 });
    expect(() => parseWav(b.subarray(0, 44 + 5), 'odd.wav')).toThrow(/odd\.wav: data chunk of 5 bytes is not a whole number of 2-byte frames/);
  });

  it('an 8 kHz clip where 16 kHz is expected is refused, naming the file', () => {
    const root = join(t.dir, 'sc');
    mkdirSync(join(root, 'yes'), { recursive: true });
    writeFileSync(join(root, 'yes', 'a.wav'), wav(20));
    writeFileSync(join(root, 'yes', 'b.wav'), wav(20, { rate: 8000 }));
    expect(() => readSpeechCommands(root, { length: 10 })).toThrow(/yes\/b\.wav: sample rate 8000 Hz \(expected 16000 Hz\)/);
    const root8 = join(t.dir, 'sc8');
    mkdirSync(join(root8, 'yes'), { recursive: true });
    writeFileSync(join(root8, 'yes', 'b.wav'), wav(20, { rate: 8000 }));
    expect(readSpeechCommands(root8, { length: 10, sampleRate: 8000 }).examples.length).toBe(1);
  });

  it('a well-formed file still reads', () => {
    expect(parseWav(wav(7), 'ok.wav').samples.length).toBe(7);
  });
});
