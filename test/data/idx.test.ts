import { gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { loadIdxDataset, readIdxImages, readIdxLabels } from '../../src/data/idx.js';
import { tempDir } from './helpers.js';

const t = tempDir();
afterAll(() => t.cleanup());

/** Big-endian IDX file: magic, dims, ubyte data. */
function idx(magic: number, dims: number[], data: number[]): Uint8Array {
  const b = Buffer.alloc(4 + 4 * dims.length + data.length);
  b.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
  Buffer.from(data).copy(b, 4 + 4 * dims.length);
  return b;
}

const pixels = [0, 255, 51, 102, /* image 2 */ 255, 255, 0, 0];
const imgs = t.file('t10k-images-idx3-ubyte', idx(2051, [2, 2, 2], pixels));
const labs = t.file('t10k-labels-idx1-ubyte.gz', gzipSync(idx(2049, [2], [7, 3])));

describe('IDX reader', () => {
  it('reads images and (gzipped) labels', () => {
    const im = readIdxImages(imgs);
    expect([im.count, im.rows, im.cols]).toEqual([2, 2, 2]);
    expect(Array.from(im.pixels)).toEqual(pixels);
    expect(Array.from(readIdxLabels(labs))).toEqual([7, 3]);
  });

  it('normalises pixels as (p/255 - mean)/std', () => {
    const d = loadIdxDataset(imgs, labs);
    expect(Array.from(d.labels)).toEqual([7, 3]);
    expect(d.images[0]).toBeCloseTo(-1, 6);
    expect(d.images[1]).toBeCloseTo(1, 6);
    expect(d.images[2]).toBeCloseTo((0.2 - 0.5) / 0.5, 6);
    const e = loadIdxDataset(imgs, labs, { mean: 0.1307, std: 0.3081 });
    expect(e.examples[1]!.values[0]).toBeCloseTo((1 - 0.1307) / 0.3081, 5);
    expect(e.examples[1]!.label).toBe(3);
    expect(e.examples[1]!.values).toHaveLength(4);
  });

  it('raises DataError for bad magic, truncation, count mismatch and labels out of range', () => {
    expect(() => readIdxImages(labs)).toThrow(/magic 2049 \(expected 2051\)/);
    expect(() => readIdxLabels(imgs)).toThrow(/magic 2051 \(expected 2049\)/);
    expect(() => readIdxImages(t.file('short', idx(2051, [3, 2, 2], pixels)))).toThrow(/truncated/);
    expect(() => readIdxImages(t.file('tiny', Uint8Array.of(0, 0, 8)))).toThrow(/too short/);
    const three = t.file('three-labels', idx(2049, [3], [1, 2, 3]));
    expect(() => loadIdxDataset(imgs, three)).toThrow(/2 images but .* has 3 labels/);
    const big = t.file('big-labels', idx(2049, [2], [1, 12]));
    expect(() => loadIdxDataset(imgs, big)).toThrow(/item 1: label 12 out of range/);
    const none = t.file('none-images', idx(2051, [0, 2, 2], []));
    const noneL = t.file('none-labels', idx(2049, [0], []));
    expect(() => loadIdxDataset(none, noneL)).toThrow(/no images/);
    expect(() => readIdxImages(`${t.dir}/missing`)).toThrow(DataError);
  });
});
