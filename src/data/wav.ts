/**
 * 16-bit PCM WAV reading and a Speech-Commands folder reader (docs/MEGA.md §8.2).
 *
 * WAV: `RIFF` size `WAVE`, then chunks `id(4) size(u32 LE) data` padded to even size. The `fmt `
 * chunk must say PCM (format 1, or WAVE_FORMAT_EXTENSIBLE 0xFFFE with a PCM sub-format) and 16 bits
 * per sample; other chunks (`LIST`, `fact`, ...) are skipped. Samples of channel 0 are returned divided
 * by 2^15. A chunk that claims more bytes than the file has (a truncated file, or a streaming writer
 * that never filled in the size) and a data chunk that ends inside a frame are refused.
 *
 * Speech Commands layout: `root/<label>/<clip>.wav`. Clips shorter than `length` samples are dropped
 * (as the reference does), longer ones truncated. Standardisation with the training split's mean and
 * unbiased std, `(x − mean)/(std + 1e-5)`, is {@link standardize}.
 */

import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { ValueExample } from './batch.js';
import { DataError, errorText } from './errors.js';
import { checkInt, readBytes } from './files.js';

/** A decoded WAV file. */
export interface WavData {
  /** Samples per second. */
  sampleRate: number;
  /** Channels in the file (only channel 0 is returned). */
  numChannels: number;
  /** Channel-0 samples divided by 2^15, in `[−1, 1)`. */
  samples: Float32Array;
}

function tag(dv: DataView, off: number): string {
  return String.fromCharCode(dv.getUint8(off), dv.getUint8(off + 1), dv.getUint8(off + 2), dv.getUint8(off + 3));
}

/**
 * Decode a 16-bit PCM WAV file held in memory.
 * @param name file name for error messages
 * @throws DataError for a bad RIFF/WAVE magic, a non-PCM format, a bit depth other than 16, or a
 *   missing `fmt `/`data` chunk
 */
export function parseWav(buf: Uint8Array, name = 'wav'): WavData {
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length < 12 || tag(dv, 0) !== 'RIFF' || tag(dv, 8) !== 'WAVE') {
    throw new DataError(`${name}: not a RIFF/WAVE file (expected "RIFF....WAVE" header)`);
  }
  let fmt: { channels: number; rate: number; align: number } | undefined;
  let off = 12;
  while (off + 8 <= buf.length) {
    const id = tag(dv, off);
    const size = dv.getUint32(off + 4, true);
    const start = off + 8;
    const avail = buf.length - start;
    if (id === 'fmt ') {
      if (size > avail) throw new DataError(`${name}: truncated: fmt chunk declares ${size} bytes but ${avail} are present`);
      if (size < 16) throw new DataError(`${name}: fmt chunk of ${size} bytes (expected >= 16)`);
      let format = dv.getUint16(start, true);
      if (format === 0xfffe && size >= 26) format = dv.getUint16(start + 24, true);
      if (format !== 1) throw new DataError(`${name}: WAV format ${format} (expected 1 = PCM)`);
      const bits = dv.getUint16(start + 14, true);
      if (bits !== 16) throw new DataError(`${name}: ${bits} bits per sample (expected 16)`);
      const channels = dv.getUint16(start + 2, true);
      if (channels < 1) throw new DataError(`${name}: ${channels} channels (expected >= 1)`);
      fmt = { channels, rate: dv.getUint32(start + 4, true), align: 2 * channels };
    } else if (id === 'data') {
      if (!fmt) throw new DataError(`${name}: data chunk before the fmt chunk (expected fmt first)`);
      if (size > avail) throw new DataError(`${name}: truncated: data chunk declares ${size} bytes but ${avail} are present`);
      if (size % fmt.align !== 0) throw new DataError(`${name}: data chunk of ${size} bytes is not a whole number of ${fmt.align}-byte frames`);
      const frames = size / fmt.align;
      const samples = new Float32Array(frames);
      for (let i = 0; i < frames; i++) samples[i] = dv.getInt16(start + i * fmt.align, true) / 32768;
      return { sampleRate: fmt.rate, numChannels: fmt.channels, samples };
    }
    off = start + size + (size & 1);
  }
  throw new DataError(`${name}: no ${fmt ? 'data' : 'fmt'} chunk (expected fmt and data chunks)`);
}

/** Read and decode a WAV file. @throws DataError (see {@link parseWav}) */
export function readWav(path: string): WavData {
  return parseWav(readBytes(path), path);
}

/** Options of {@link readSpeechCommands}. */
export interface SpeechCommandsOptions {
  /** Labels (subfolder names) in class-id order; default: every subfolder, sorted. */
  labels?: readonly string[];
  /** Samples per clip (default 16 000); shorter clips are dropped, longer truncated. */
  length?: number;
  /** Sample rate every clip must have, in Hz (default 16 000, the Speech Commands rate). */
  sampleRate?: number;
}

/** The 10-class subset used by the Mega recipe, in class-id order. */
export const SPEECH_COMMANDS_10: readonly string[] = ['yes', 'no', 'up', 'down', 'left', 'right', 'on', 'off', 'stop', 'go'];

/** Result of {@link readSpeechCommands}. */
export interface SpeechCommandsData {
  /** Clips (`values` = samples / 2^15, `label` = index in `labels`), in label then file-name order. */
  examples: ValueExample[];
  /** Class names. */
  labels: string[];
  /** File of each example (relative to the root). */
  files: string[];
  /** Clips dropped for being shorter than `length`. */
  dropped: number;
}

function listDir(path: string): string[] {
  try {
    return readdirSync(path).sort();
  } catch (e) {
    throw new DataError(`${path}: cannot read directory (${errorText(e)})`, { cause: e });
  }
}

/**
 * Read a Speech-Commands-layout folder (one subfolder of `.wav` files per label).
 * @throws DataError for an unreadable root, a missing label folder, a bad WAV file or no clip kept
 */
export function readSpeechCommands(root: string, opts: SpeechCommandsOptions = {}): SpeechCommandsData {
  const length = opts.length ?? 16000;
  const rate = opts.sampleRate ?? 16000;
  checkInt('length', length);
  checkInt('sampleRate', rate);
  const isDir = (d: string): boolean => {
    try {
      return statSync(join(root, d)).isDirectory();
    } catch {
      return false;
    }
  };
  // `_background_noise_` is not a label in the Speech Commands layout
  const labels = opts.labels ? [...opts.labels] : listDir(root).filter((d) => isDir(d) && !d.startsWith('_'));
  if (labels.length === 0) throw new DataError(`${root}: no label subfolders (expected root/<label>/*.wav)`);
  const examples: ValueExample[] = [];
  const files: string[] = [];
  let dropped = 0;
  labels.forEach((label, id) => {
    const dir = join(root, label);
    for (const f of listDir(dir).filter((n) => n.toLowerCase().endsWith('.wav'))) {
      const path = join(dir, f);
      const { samples, sampleRate } = readWav(path);
      if (sampleRate !== rate) throw new DataError(`${path}: sample rate ${sampleRate} Hz (expected ${rate} Hz): resample the clips`);
      if (samples.length < length) {
        dropped++;
        continue;
      }
      examples.push({ values: samples.length === length ? samples : samples.slice(0, length), label: id });
      files.push(join(label, f));
    }
  });
  if (examples.length === 0) {
    throw new DataError(`${root}: no clip of >= ${length} samples (${dropped} shorter ones dropped)`);
  }
  return { examples, labels, files, dropped };
}

/** Mean and unbiased (n − 1) standard deviation over all values of the examples. */
export function meanStd(examples: readonly ValueExample[]): { mean: number; std: number } {
  let n = 0;
  let sum = 0;
  for (const e of examples)
    for (const v of e.values) {
      sum += v;
      n++;
    }
  if (n < 2) throw new DataError(`meanStd: ${n} value(s) (expected >= 2)`);
  const mean = sum / n;
  let ss = 0;
  for (const e of examples) for (const v of e.values) ss += (v - mean) * (v - mean);
  return { mean, std: Math.sqrt(ss / (n - 1)) };
}

/** Standardise in place: `x ← (x − mean)/(std + 1e-5)` (docs/MEGA.md §8.2). */
export function standardize(examples: readonly ValueExample[], mean: number, std: number): void {
  const d = std + 1e-5;
  for (const e of examples) for (let i = 0; i < e.values.length; i++) e.values[i] = (e.values[i]! - mean) / d;
}
