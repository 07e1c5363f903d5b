/**
 * MNIST-family IDX files (`*-images-idx3-ubyte`, `*-labels-idx1-ubyte`, optionally gzipped).
 *
 * Format (big-endian): a 32-bit magic `0x0000TTDD` (`TT` = 0x08 unsigned byte data, `DD` = number
 * of dimensions) — 2051 for 3-d image files, 2049 for 1-d label files — then one 32-bit size per
 * dimension, then the data in row-major order.
 *
 * Pixels become `(p/255 − mean)/std` as Float32 (docs/MEGA.md §8.1 pixel normalisation, default `(0.5, 0.5)`),
 * flattened row-major to `rows·cols` values per image.
 */

import type { ValueExample } from './batch.js';
import { DataError } from './errors.js';
import { MAX_DATA_FILE_BYTES, checkLabel, gunzipBounded, gunzipHead, isGzip, readBytes } from './files.js';

/** Magic number of an IDX image file (ubyte, 3 dimensions). */
export const IDX_IMAGES_MAGIC = 2051;
/** Magic number of an IDX label file (ubyte, 1 dimension). */
export const IDX_LABELS_MAGIC = 2049;

/** Raw contents of an IDX image file. */
export interface IdxImages {
  /** Number of images. */
  count: number;
  /** Image height. */
  rows: number;
  /** Image width. */
  cols: number;
  /** `count × rows × cols` pixels (0–255). */
  pixels: Uint8Array;
}

function header(buf: Uint8Array, path: string, magic: number, ndim: number): number[] {
  const need = 4 + 4 * ndim;
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  if (buf.length >= 4) {
    const m = dv.getUint32(0, false);
    if (m !== magic) throw new DataError(`${path}: IDX magic ${m} (expected ${magic})`);
  }
  if (buf.length < need) throw new DataError(`${path}: ${buf.length} bytes, too short for an IDX header (expected >= ${need})`);
  return Array.from({ length: ndim }, (_, i) => dv.getUint32(4 + 4 * i, false));
}

function body(buf: Uint8Array, path: string, offset: number, n: number): Uint8Array {
  if (buf.length < offset + n) {
    throw new DataError(`${path}: truncated, ${buf.length - offset} data bytes (expected ${n})`);
  }
  return buf.subarray(offset, offset + n);
}

/**
 * Read an IDX file of `ubyte` data: the header first, then (for gzip) inflation bounded by the size
 * the header declares, so a small file cannot inflate to gigabytes.
 * @returns the dimensions and the data bytes
 */
function readIdx(path: string, magic: number, ndim: number): { dims: number[]; data: Uint8Array } {
  const raw = readBytes(path);
  const need = 4 + 4 * ndim;
  const dims = header(isGzip(raw) ? gunzipHead(raw, path, need) : raw, path, magic, ndim);
  const n = dims.reduce((a, b) => a * b, 1);
  const declared = need + n;
  if (declared > MAX_DATA_FILE_BYTES) {
    throw new DataError(
      `${path}: IDX header declares ${dims.join(' x ')} = ${n.toPrecision(3)} bytes, more than the ${MAX_DATA_FILE_BYTES}-byte limit of a data file`,
    );
  }
  const buf = isGzip(raw)
    ? gunzipBounded(raw, path, declared, `the ${declared} bytes its IDX header declares (${need}-byte header + ${dims.join(' x ')} data bytes)`)
    : raw;
  return { dims, data: body(buf, path, need, n) };
}

/**
 * Read an IDX image file (magic 2051).
 * @throws DataError for an unreadable file, a wrong magic number, truncated data or a gzip stream
 *   inflating beyond the declared size
 */
export function readIdxImages(path: string): IdxImages {
  const { dims, data } = readIdx(path, IDX_IMAGES_MAGIC, 3);
  const [count, rows, cols] = dims as [number, number, number];
  return { count, rows, cols, pixels: data };
}

/**
 * Read an IDX label file (magic 2049).
 * @throws DataError for an unreadable file, a wrong magic number, truncated data or a gzip stream
 *   inflating beyond the declared size
 */
export function readIdxLabels(path: string): Uint8Array {
  return readIdx(path, IDX_LABELS_MAGIC, 1).data;
}

/** Options of {@link loadIdxDataset}. */
export interface IdxOptions {
  /** Pixel normalisation mean (default 0.5). */
  mean?: number;
  /** Pixel normalisation std (default 0.5). */
  std?: number;
  /** Labels must be below this (default 10). */
  numClasses?: number;
}

/** A normalised image classification set. */
export interface IdxDataset {
  /** Number of images. */
  count: number;
  /** Image height. */
  rows: number;
  /** Image width. */
  cols: number;
  /** `count × rows·cols` normalised pixels `(p/255 − mean)/std`. */
  images: Float32Array;
  /** `count` labels. */
  labels: Int32Array;
  /** One example per image (`values` are views into `images`). */
  examples: ValueExample[];
}

/**
 * Load an images + labels IDX pair.
 * @throws DataError for bad files, a count mismatch, no images, a label out of range or `std <= 0`
 */
export function loadIdxDataset(imagesPath: string, labelsPath: string, opts: IdxOptions = {}): IdxDataset {
  const mean = opts.mean ?? 0.5;
  const std = opts.std ?? 0.5;
  const numClasses = opts.numClasses ?? 10;
  if (!(std > 0) || !Number.isFinite(mean)) throw new DataError(`pixel normalisation (${mean}, ${std}): expected a finite mean and std > 0`);
  const img = readIdxImages(imagesPath);
  const lab = readIdxLabels(labelsPath);
  if (img.count !== lab.length) {
    throw new DataError(`${imagesPath}: ${img.count} images but ${labelsPath} has ${lab.length} labels (expected equal counts)`);
  }
  if (img.count === 0) throw new DataError(`${imagesPath}: no images (expected at least one)`);
  const size = img.rows * img.cols;
  const images = new Float32Array(img.pixels.length);
  for (let i = 0; i < images.length; i++) images[i] = (img.pixels[i]! / 255 - mean) / std;
  const labels = new Int32Array(lab.length);
  const examples: ValueExample[] = [];
  for (let i = 0; i < lab.length; i++) {
    checkLabel(lab[i]!, `${labelsPath}: item ${i}`, numClasses);
    labels[i] = lab[i]!;
    examples.push({ values: images.subarray(i * size, (i + 1) * size), label: lab[i]! });
  }
  return { count: img.count, rows: img.rows, cols: img.cols, images, labels, examples };
}
