import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { meanStd, parseWav, readSpeechCommands, readWav, standardize } from '../../src/data/wav.js';
import { tempDir } from './helpers.js';

const t = tempDir();
afterAll(() => t.cleanup());

interface WavSpec {
  samples: number[];
  channels?: number;
  bits?: number;
  format?: number;
  extra?: boolean;
}

/** Build a WAV file; `samples` are interleaved int16 values. */
function wav({ samples, channels = 1, bits = 16, format = 1, extra = false }: WavSpec): Uint8Array {
  const chunks: Buffer[] = [];
  const fmt = Buffer.alloc(8 + 16);
  fmt.write('fmt ', 0, 'ascii');
  fmt.writeUInt32LE(16, 4);
  fmt.writeUInt16LE(format, 8);
  fmt.writeUInt16LE(channels, 10);
  fmt.writeUInt32LE(16000, 12);
  fmt.writeUInt32LE(16000 * channels * (bits / 8), 16);
  fmt.writeUInt16LE(channels * (bits / 8), 20);
  fmt.writeUInt16LE(bits, 22);
  chunks.push(fmt);
  if (extra) {
    const list = Buffer.alloc(8 + 3 + 1); // odd-sized chunk + pad byte
    list.write('LIST', 0, 'ascii');
    list.writeUInt32LE(3, 4);
    chunks.push(list);
  }
  const data = Buffer.alloc(8 + 2 * samples.length);
  data.write('data', 0, 'ascii');
  data.writeUInt32LE(2 * samples.length, 4);
  samples.forEach((s, i) => data.writeInt16LE(s, 8 + 2 * i));
  chunks.push(data);
  const body = Buffer.concat(chunks);
  const head = Buffer.alloc(12);
  head.write('RIFF', 0, 'ascii');
  head.writeUInt32LE(4 + body.length, 4);
  head.write('WAVE', 8, 'ascii');
  return Buffer.concat([head, body]);
}

describe('WAV reader', () => {
  it('decodes 16-bit PCM mono, scaled by 2^-15', () => {
    const w = readWav(t.file('a.wav', wav({ samples: [0, 16384, -32768, 32767] })));
    expect(w.sampleRate).toBe(16000);
    expect(w.numChannels).toBe(1);
    expect(Array.from(w.samples)).toEqual([0, 0.5, -1, 32767 / 32768]);
  });

  it('takes channel 0 of stereo and skips extra chunks', () => {
    const w = parseWav(wav({ samples: [100, -1, 200, -2], channels: 2, extra: true }));
    expect(w.numChannels).toBe(2);
    expect(Array.from(w.samples)).toEqual([100 / 32768, 200 / 32768]);
  });

  it('raises DataError for bad magic, bit depth, format and missing chunks', () => {
    const good = wav({ samples: [1] });
    const badMagic = Uint8Array.from(good);
    badMagic[0] = 0x58;
    expect(() => parseWav(badMagic, 'x.wav')).toThrow(/x.wav: not a RIFF\/WAVE file/);
    expect(() => parseWav(wav({ samples: [1, 2], bits: 8 }), 'b.wav')).toThrow(/8 bits per sample \(expected 16\)/);
    expect(() => parseWav(wav({ samples: [1], format: 3 }))).toThrow(/format 3 \(expected 1 = PCM\)/);
    expect(() => parseWav(good.subarray(0, 12 + 24))).toThrow(/no data chunk/);
    expect(() => readWav(`${t.dir}/missing.wav`)).toThrow(DataError);
  });
});

describe('Speech Commands folder reader', () => {
  it('reads one subfolder per label, drops short clips, truncates long ones', () => {
    const root = join(t.dir, 'sc');
    for (const [label, clips] of [
      [
        'yes',
        [
          [1, 2, 3, 4],
          [5, 6],
        ],
      ],
      ['no', [[7, 8, 9, 10, 11]]],
    ] as const) {
      mkdirSync(join(root, label), { recursive: true });
      clips.forEach((c, i) => writeFileSync(join(root, label, `c${i}.wav`), wav({ samples: [...c] })));
    }
    writeFileSync(join(root, 'README.txt'), 'not a label');
    const d = readSpeechCommands(root, { length: 4 });
    expect(d.labels).toEqual(['no', 'yes']);
    expect(d.dropped).toBe(1);
    expect(d.files).toEqual([join('no', 'c0.wav'), join('yes', 'c0.wav')]);
    expect(d.examples.map((e) => e.label)).toEqual([0, 1]);
    expect(Array.from(d.examples[0]!.values, (v) => v * 32768)).toEqual([7, 8, 9, 10]);
    const sub = readSpeechCommands(root, { length: 4, labels: ['yes'] });
    expect(sub.examples).toHaveLength(1);
    expect(() => readSpeechCommands(root, { length: 100 })).toThrow(/no clip/);
    expect(() => readSpeechCommands(root, { labels: ['go'] })).toThrow(DataError);
  });

  it('standardises with the unbiased std', () => {
    const ex = [{ values: Float32Array.from([1, 2]) }, { values: Float32Array.from([3, 4]) }];
    const { mean, std } = meanStd(ex);
    expect(mean).toBe(2.5);
    expect(std).toBeCloseTo(Math.sqrt(5 / 3), 12);
    standardize(ex, mean, std);
    expect(ex[0]!.values[0]).toBeCloseTo(-1.5 / (std + 1e-5), 6);
  });
});
