/**
 * Fuzz test of every file reader (issue 15): seeded random and truncated bytes are fed to the
 * safetensors reader, the torch zip + pickle reader (and the fairseq import built on it), the
 * msgpack golden reader (and the case runner), the IDX, WAV, TSV, ListOps and LM text readers,
 * and the fairseq indexed dataset (.idx and .bin) and dictionary readers. Each case must return
 * or throw a MegaError of kind 'user' (a one-line message, exit 2 in the CLI) — never a raw
 * RangeError / TypeError — within a per-case time bound (a hang detector, not a speed test) and
 * without growing the process's peak memory by more than a bound. The case count is printed.
 *
 * MEGA_FUZZ_CASES=<n> changes the number of cases per reader (default 200); MEGA_FUZZ_SEED the seed.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { isUserError } from '../../src/errors.js';
import { readDictionary } from '../../src/data/fairseq/dictionary.js';
import { readIndexedDataset } from '../../src/data/fairseq/indexed.js';
import { readIdxImages, readIdxLabels } from '../../src/data/idx.js';
import { readListOpsTsv } from '../../src/data/listops.js';
import { readLmText } from '../../src/data/lmtext.js';
import { readClassificationTsv, readRetrievalTsv } from '../../src/data/tsv.js';
import { parseWav } from '../../src/data/wav.js';
import { decodeGolden } from '../../src/io/golden.js';
import { decodeFairseqCheckpoint } from '../../src/io/pt.js';
import { decodeSafetensors, encodeSafetensors } from '../../src/io/safetensors.js';
import { ZipArchive } from '../../src/io/zip.js';
import { importFairseq } from '../../src/train/fairseq-import.js';
import { runCase } from '../../src/verify/index.js';
import { tempDir } from '../data/helpers.js';
import { makeZip } from '../io/fixtures.js';

const CASES = Number(process.env.MEGA_FUZZ_CASES ?? 200);
const SEED = Number(process.env.MEGA_FUZZ_SEED ?? 20261201);
/** A single case taking longer than this is a hang (generous: the machine is shared). */
const CASE_LIMIT_MS = 20_000;
/** Peak resident memory may grow by at most this over the whole fuzz run. */
const PEAK_GROWTH_MB = 1024;

const t = tempDir('mega-fuzz-');
afterAll(() => t.cleanup());
const here = join(__dirname, '..');

/** mulberry32: a small seeded generator (test-local, so the cases never change with src/). */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let x = a;
    x = Math.imul(x ^ (x >>> 15), x | 1);
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61);
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296;
  };
}

const INTERESTING = [0, 1, 0x7f, 0x80, 0xff, 0x7fffffff, 0xffffffff, 0x80000000, 0x10000, 0xfffe];

/** One mutation of `seed`: truncation, bit flips, interesting words, a spliced block, or pure noise. */
function mutate(seed: Uint8Array, r: () => number): { bytes: Uint8Array; how: string } {
  const int = (n: number) => Math.floor(r() * n);
  const kind = int(6);
  if (kind === 0) {
    const n = int(seed.length + 1);
    return { bytes: seed.slice(0, n), how: `truncate to ${n}` };
  }
  if (kind === 5) {
    const n = int(1024);
    return { bytes: Uint8Array.from({ length: n }, () => int(256)), how: `${n} random bytes` };
  }
  const b = seed.slice();
  if (b.length === 0) return { bytes: b, how: 'empty' };
  const k = 1 + int(8);
  const edits: string[] = [];
  for (let i = 0; i < k; i++) {
    const at = int(b.length);
    if (kind === 1) {
      b[at] ^= 1 << int(8);
      edits.push(`flip@${at}`);
    } else if (kind === 2) {
      const v = INTERESTING[int(INTERESTING.length)]!;
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      if (at + 4 <= b.length) dv.setUint32(at, v, r() < 0.5);
      else b[at] = v & 0xff;
      edits.push(`word ${v}@${at}`);
    } else if (kind === 3) {
      const from = int(b.length),
        len = int(64);
      b.copyWithin(at, from, Math.min(b.length, from + len));
      edits.push(`copy ${from}+${len}@${at}`);
    } else {
      b[at] = int(256);
      edits.push(`byte@${at}`);
    }
  }
  return { bytes: b, how: edits.join(' ') };
}

/** A reader under test: takes mutated bytes (and a file path holding them) and reads them. */
interface Target {
  name: string;
  seeds: Uint8Array[];
  /** Extension of the temp file the bytes are written to (readers that take a path). */
  file?: string;
  /** Any bytes are valid input (so a run may see no error at all). */
  anyBytes?: boolean;
  read(bytes: Uint8Array, path: string): unknown;
}

function le16(n: number): number[] {
  return [n & 0xff, n >> 8];
}
function le32(n: number): number[] {
  return [n & 0xff, (n >> 8) & 0xff, (n >> 16) & 0xff, n >>> 24];
}

function wavSeed(): Uint8Array {
  const samples = Array.from({ length: 40 }, (_, i) => (i * 997) % 65536);
  const data = samples.flatMap((s) => le16(s));
  return Uint8Array.from([
    ...Buffer.from('RIFF'),
    ...le32(36 + data.length),
    ...Buffer.from('WAVEfmt '),
    ...le32(16),
    ...le16(1),
    ...le16(1),
    ...le32(16000),
    ...le32(32000),
    ...le16(2),
    ...le16(16),
    ...Buffer.from('data'),
    ...le32(data.length),
    ...data,
  ]);
}

function idxSeed(): Uint8Array {
  const head = [0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0, 3];
  return Uint8Array.from([...head, ...Array.from({ length: 18 }, (_, i) => i * 13)]);
}

/** A fairseq mmap index (`MMIDIDX`, version 1, dtype code 4 = int32) of sentences of `sizes` tokens. */
function fairseqIdx(sizes: number[]): Uint8Array {
  const b = Buffer.alloc(26 + 12 * sizes.length);
  b.write('MMIDIDX\0\0', 0, 'latin1');
  b.writeBigUInt64LE(1n, 9);
  b[17] = 4;
  b.writeBigUInt64LE(BigInt(sizes.length), 18);
  let off = 0;
  sizes.forEach((s, i) => {
    b.writeInt32LE(s, 26 + 4 * i);
    b.writeBigInt64LE(BigInt(off), 26 + 4 * sizes.length + 8 * i);
    off += 4 * s;
  });
  return b;
}

/** The `.bin` of {@link fairseqIdx}: int32 token ids. */
function fairseqBin(sizes: number[]): Uint8Array {
  const n = sizes.reduce((a, b) => a + b, 0);
  return new Uint8Array(Int32Array.from({ length: n }, (_, i) => 4 + (i % 7)).buffer);
}

/** Writes `idx` and `bin` as `<path>.idx` / `<path>.bin` and reads the pair. */
function readPair(path: string, idx: Uint8Array, bin: Uint8Array): unknown {
  writeFileSync(`${path}.idx`, idx);
  writeFileSync(`${path}.bin`, bin);
  const d = readIndexedDataset(path);
  for (let i = 0; i < d.length; i++) d.get(i);
  return d;
}

const SIZES = [3, 1, 4, 0, 2];

/** The tiny listops checkpoint with its pickle replaced by `pkl` (CRC recomputed so the pickle is reached). */
function withPickle(entries: Array<{ name: string; data: Uint8Array }>, pkl: Uint8Array): Uint8Array {
  return makeZip(entries.map((e) => (e.name.endsWith('data.pkl') ? { name: e.name, data: pkl } : e)));
}

const ptBytes = new Uint8Array(readFileSync(join(here, 'golden', 'checkpoints', 'mega_lra_listops_tiny.pt')));
const ptZip = new ZipArchive(ptBytes, 'seed');
const ptEntries = [...ptZip.entries.keys()].map((name) => ({ name, data: ptZip.read(name).slice() }));
const pkl = ptEntries.find((e) => e.name.endsWith('data.pkl'))!.data;

const targets: Target[] = [
  {
    name: 'safetensors',
    seeds: [
      encodeSafetensors(
        { w: { dtype: 'f32', shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) }, b: { dtype: 'i32', shape: [2], data: new Int32Array([7, 8]) } },
        { format: 'x' },
        { checksums: true },
      ),
      encodeSafetensors({ m: { dtype: 'bool', shape: [3], data: new Uint8Array([1, 0, 1]) }, d: { dtype: 'f64', shape: [], data: new Float64Array([3.5]) } }),
    ],
    read: (b, p) => decodeSafetensors(b, p),
  },
  {
    name: 'torch zip (whole file)',
    seeds: [ptBytes],
    read: (b, p) => importFairseq(decodeFairseqCheckpoint(b, p), { label: p }),
  },
  {
    name: 'pickle (inside a valid zip) + fairseq import',
    seeds: [pkl],
    read: (b, p) => importFairseq(decodeFairseqCheckpoint(withPickle(ptEntries, b), p), { label: p }),
  },
  {
    name: 'msgpack golden + case run',
    seeds: ['relpos_simple', 'ema_uni', 'nffn_prenorm_silu'].map((n) => new Uint8Array(readFileSync(join(here, 'golden', `${n}.msgpack`)))),
    read: (b) => {
      const c = decodeGolden(b);
      const rep = runCase(c, 'f64'); // never throws: a bad case is a failed report
      if (rep.pass && rep.tensors.length === 0) throw new Error('a case that compared nothing passed');
      return rep;
    },
  },
  { name: 'IDX', seeds: [idxSeed(), gzipSync(idxSeed())], file: 'idx', read: (_, p) => readIdxImages(p) },
  {
    name: 'IDX labels',
    seeds: [Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 3, 1, 2, 3]), gzipSync(Uint8Array.from([0, 0, 8, 1, 0, 0, 0, 2, 5, 6]))],
    file: 'idx',
    read: (_, p) => readIdxLabels(p),
  },
  { name: 'WAV', seeds: [wavSeed()], read: (b, p) => parseWav(b, p) },
  {
    name: 'classification TSV',
    seeds: [Buffer.from('1\thello world\n0\tsecond line\n'), gzipSync(Buffer.from('3\tx\n2\tab\tcd\n'))],
    file: 'tsv',
    read: (_, p) => readClassificationTsv(p, { numClasses: 4, maxLength: 16 }),
  },
  {
    name: 'retrieval TSV',
    seeds: [Buffer.from('1\thello\tworld\n0\ta\tb\n'), gzipSync(Buffer.from('3\tx\ty\n2\tab\tcd\n'))],
    file: 'tsv',
    read: (_, p) => readRetrievalTsv(p, { numClasses: 4 }),
  },
  {
    name: 'ListOps TSV (validated)',
    seeds: [Buffer.from('Source\tTarget\n[MAX 2 9 [MIN 4 7 ] 0 ]\t9\n( [SM 1 2 ] )\t3\n')],
    file: 'tsv',
    read: (_, p) => readListOpsTsv(p, true),
  },
  { name: 'fairseq indexed dataset (.idx)', seeds: [fairseqIdx(SIZES)], read: (b, p) => readPair(p, b, fairseqBin(SIZES)) },
  { name: 'fairseq indexed dataset (.bin)', seeds: [fairseqBin(SIZES)], read: (b, p) => readPair(p, fairseqIdx(SIZES), b) },
  { name: 'fairseq dict.txt', seeds: [Buffer.from('the 10\nof 7\n, 5\n<madeupword0> 0 #fairseq:overwrite\n')], file: 'txt', read: (_, p) => readDictionary(p) },
  { name: 'LM text', seeds: [Buffer.from('hello\nworld\n')], file: 'txt', anyBytes: true, read: (_, p) => readLmText(p, { blockSize: 4 }) },
];

describe('reader fuzz', () => {
  let total = 0;
  afterAll(() => {
    process.stdout.write(`reader fuzz: ${total} cases (${targets.length} readers x ${CASES}, seed ${SEED})\n`);
  });
  const peakBefore = process.resourceUsage().maxRSS / 1024;

  it('every unmutated seed reads without error (so mutations start from valid input)', () => {
    targets.forEach((target, ti) =>
      target.seeds.forEach((seed, k) => {
        const path = join(t.dir, `seed-${ti}-${k}.${target.file ?? 'bin'}`);
        if (target.file) writeFileSync(path, seed);
        expect(() => target.read(seed, path), `${target.name} seed ${k}`).not.toThrow();
      }),
    );
  });

  targets.forEach((target, ti) => {
    it(`${target.name}: ${CASES} mutated inputs give only user errors`, () => {
      const r = rng(SEED + 7919 * ti);
      const bad: string[] = [];
      let slowest = 0,
        errors = 0;
      for (let i = 0; i < CASES; i++) {
        const seed = target.seeds[i % target.seeds.length]!;
        const { bytes, how } = mutate(seed, r);
        const path = join(t.dir, `case-${ti}-${i}.${target.file ?? 'bin'}`);
        if (target.file) writeFileSync(path, bytes);
        const t0 = performance.now();
        try {
          target.read(bytes, path);
        } catch (e) {
          errors++;
          if (!isUserError(e)) bad.push(`case ${i} (${how}): ${(e as Error)?.name}: ${String((e as Error)?.message).slice(0, 200)}`);
          else if ((e as Error).message.includes('\n')) bad.push(`case ${i} (${how}): multi-line message`);
        }
        const ms = performance.now() - t0;
        slowest = Math.max(slowest, ms);
        if (ms > CASE_LIMIT_MS) bad.push(`case ${i} (${how}): took ${ms.toFixed(0)} ms`);
        total++;
      }
      expect(bad, bad.slice(0, 10).join('\n')).toEqual([]);
      if (!target.anyBytes) expect(errors).toBeGreaterThan(0); // the mutations do reach the error paths
      const growth = process.resourceUsage().maxRSS / 1024 - peakBefore;
      expect(growth).toBeLessThan(PEAK_GROWTH_MB);
    });
  });
});
