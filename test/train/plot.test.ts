import { describe, expect, it } from 'vitest';
import { formatTick, niceAxis, renderCurvesSvg } from '../../src/train/plot.js';

/** Minimal well-formedness check: balanced tags, quoted attributes, nothing outside the root. */
function checkXml(svg: string): void {
  const stack: string[] = [];
  const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|<|>/g;
  let roots = 0;
  let m: RegExpExecArray | null;
  let last = 0;
  while ((m = re.exec(svg))) {
    const between = svg.slice(last, m.index);
    if (stack.length === 0) expect(between.trim()).toBe('');
    expect(between).not.toMatch(/&(?!amp;|lt;|gt;|quot;)/);
    last = re.lastIndex;
    if (!m[2]) throw new Error(`stray ${m[0]} at ${m.index}`);
    if (m[1]) expect(stack.pop()).toBe(m[2]);
    else if (!m[4]) {
      if (stack.length === 0) roots++;
      stack.push(m[2]);
    }
  }
  expect(stack).toEqual([]);
  expect(roots).toBe(1);
  expect(svg.slice(last).trim()).toBe('');
}

describe('niceAxis', () => {
  it('rounds extents outward to 1/2/5 steps', () => {
    expect(niceAxis(0, 10)).toEqual({ min: 0, max: 10, step: 2, ticks: [0, 2, 4, 6, 8, 10] });
    const a = niceAxis(0.53, 2.3);
    expect([a.min, a.max, a.step]).toEqual([0.5, 2.5, 0.5]);
    expect(niceAxis(3, 3).min).toBeLessThan(3);
    expect(niceAxis(Infinity, -Infinity)).toMatchObject({ min: 0, max: 1 });
    expect(niceAxis(0.1, 0.3).ticks).toEqual([0.1, 0.15, 0.2, 0.25, 0.3]);
  });
  it('formats ticks', () => {
    expect([formatTick(0.25), formatTick(1e-5), formatTick(2e6), formatTick(0)]).toEqual(['0.25', '1.0e-5', '2.0e6', '0']);
  });
});

describe('renderCurvesSvg', () => {
  const svg = renderCurvesSvg(
    [
      {
        name: 'train <loss>',
        points: [
          [0, 2.3],
          [5, 1.1],
          [10, 0.53],
        ],
      },
      {
        name: 'valid & co',
        points: [
          [0, 2.2],
          [10, 0.9],
          [12, Number.NaN],
        ],
      },
      { name: 'empty', points: [] },
    ],
    { title: 'Loss "curves"', xLabel: 'update', yLabel: 'loss (bits)' },
  );

  it('is a well-formed standalone SVG', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    checkXml(svg);
    expect(svg).toContain('Loss &quot;curves&quot;');
    expect(svg).toContain('train &lt;loss&gt;');
    expect(svg).toContain('valid &amp; co');
  });

  it('draws one path per series and a legend entry each', () => {
    const paths = svg.match(/<path class="series"[^>]*>/g)!;
    expect(paths).toHaveLength(3);
    expect(paths[0]).toMatch(/d="M[\d.]+ [\d.]+ L[\d.]+ [\d.]+ L[\d.]+ [\d.]+"/);
    expect(paths[2]).toContain('d=""');
    expect(svg.match(/<g class="legend">[\s\S]*?<\/g>/)![0].match(/<text/g)).toHaveLength(3);
  });

  it('uses the nice extents of all finite points', () => {
    const attr = (k: string): number => Number(new RegExp(`data-${k}="([^"]+)"`).exec(svg)![1]);
    expect([attr('x-min'), attr('x-max'), attr('y-min'), attr('y-max')]).toEqual([0, 10, 0.5, 2.5]);
    // the first point (0, 2.3) lies inside the plot rectangle
    const m = /d="M([\d.]+) ([\d.]+)/.exec(svg)!;
    const [x, y] = [Number(m[1]), Number(m[2])];
    expect(x).toBe(72);
    expect(y).toBeGreaterThan(40);
    expect(y).toBeLessThan(420 - 52);
    checkXml(renderCurvesSvg([], { title: 't', xLabel: 'x', yLabel: 'y' }));
  });
});
