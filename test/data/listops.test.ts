import { afterAll, describe, expect, it } from 'vitest';
import { DataError } from '../../src/data/errors.js';
import { encodeListOps, evaluateListOps, generateListOps, listOpsDictionary, listOpsToString, parseListOps, readListOpsTsv } from '../../src/data/listops.js';
import { EOS } from '../../src/data/vocab.js';
import { tempDir } from './helpers.js';

/** Independent evaluator: repeatedly reduce an innermost `[OP d d … ]` with a regex. */
function refEval(src: string): number {
  let s = src.replace(/[()]/g, ' ').trim().replace(/\s+/g, ' ');
  const inner = /\[(MAX|MIN|MED|SM)((?: \d)+) \]/;
  for (let m = inner.exec(s); m; m = inner.exec(s)) {
    const v = m[2]!.trim().split(' ').map(Number);
    let r: number;
    if (m[1] === 'MAX') r = Math.max(...v);
    else if (m[1] === 'MIN') r = Math.min(...v);
    else if (m[1] === 'SM') r = v.reduce((a, b) => a + b) % 10;
    else {
      v.sort((a, b) => a - b);
      const h = v.length / 2;
      r = v.length % 2 ? v[Math.floor(h)]! : Math.floor((v[h - 1]! + v[h]!) / 2);
    }
    s = s.slice(0, m.index) + String(r) + s.slice(m.index + m[0].length);
  }
  expect(s).toMatch(/^\d$/);
  return Number(s);
}

const t = tempDir();
afterAll(() => t.cleanup());

describe('ListOps generator', () => {
  const opts = { maxDepth: 6, maxArgs: 5, minLength: 10, maxLength: 60 };
  const a = generateListOps(200, 123, opts);

  it('is deterministic in the seed', () => {
    expect(generateListOps(200, 123, opts)).toEqual(a);
    expect(generateListOps(20, 124, opts)).not.toEqual(a.slice(0, 20));
  });

  it('labels each expression with its value', () => {
    for (const e of a) {
      expect(e.label).toBe(refEval(e.source));
      expect(e.label >= 0 && e.label <= 9).toBe(true);
    }
    // all four operators and several labels actually occur
    const all = a.map((e) => e.source).join(' ');
    for (const op of ['[MAX', '[MIN', '[MED', '[SM']) expect(all).toContain(op);
    expect(new Set(a.map((e) => e.label)).size).toBeGreaterThan(5);
  });

  it('respects length, depth, args and uniqueness', () => {
    expect(new Set(a.map((e) => e.source)).size).toBe(a.length);
    for (const e of a) {
      const toks = e.source.split(' ');
      expect(toks.length).toBeGreaterThanOrEqual(10);
      expect(toks.length).toBeLessThanOrEqual(60);
      let depth = 0;
      let max = 0;
      for (const tok of toks) {
        if (tok.startsWith('[')) max = Math.max(max, ++depth);
        else if (tok === ']') depth--;
      }
      expect(max).toBeLessThanOrEqual(5); // operators sit at depths 1..maxDepth-1
    }
    const tree = parseListOps(a[0]!.source);
    const argCounts: number[] = [];
    const walk = (n: typeof tree): void => {
      if (typeof n !== 'number') {
        argCounts.push(n.args.length);
        n.args.forEach(walk);
      }
    };
    walk(tree);
    for (const c of argCounts) expect(c >= 2 && c <= 5).toBe(true);
  });

  it('prints, parses and evaluates trees consistently', () => {
    const tree = { op: 'MAX' as const, args: [2, 9, { op: 'MIN' as const, args: [4, 7] }, 0] };
    expect(listOpsToString(tree)).toBe('[MAX 2 9 [MIN 4 7 ] 0 ]');
    expect(evaluateListOps(tree)).toBe(9);
    expect(evaluateListOps(parseListOps('( ( [MED 1 ) 4 ) 8 ) 9 ] )'))).toBe(6);
    expect(evaluateListOps(parseListOps('[SM 9 8 [MED 3 4 ] ]'))).toBe(0);
    for (const bad of ['[MAX 1', '1 ]', '[FOO 1 ]', '', '[MAX ]', '1 2']) {
      expect(() => parseListOps(bad, 'expr')).toThrow(DataError);
    }
  });

  it('rejects unreachable bounds and bad options', () => {
    expect(() => generateListOps(1, 1, { maxDepth: 1, minLength: 3, maxLength: 10, maxAttempts: 100 })).toThrow(/no tree/);
    expect(() => generateListOps(1, 1, { maxArgs: 1 })).toThrow(/maxArgs/);
    expect(() => generateListOps(11, 1, { maxDepth: 1, minLength: 1, maxLength: 1, maxAttempts: 1000 })).toThrow(/distinct/);
  });
});

describe('ListOps TSV reader', () => {
  it('reads the LRA layout (header, parentheses) and encodes with the symbol vocabulary', () => {
    const p = t.file('listops.tsv', 'Source\tTarget\n( ( [MAX 2 ) 9 ] )\t9\n[SM 5 6 ]\t1\n\n');
    const ex = readListOpsTsv(p, true);
    expect(ex).toEqual([
      { source: '( ( [MAX 2 ) 9 ] )', label: 9 },
      { source: '[SM 5 6 ]', label: 1 },
    ]);
    const d = listOpsDictionary();
    expect(d.size).toBe(19);
    const enc = encodeListOps(ex, d);
    expect(d.decode(enc[0]!.tokens, true)).toEqual(['[MAX', '2', '9', ']', '</s>']);
    expect(enc[1]!.label).toBe(1);
    expect(enc[1]!.tokens[enc[1]!.tokens.length - 1]).toBe(EOS);
  });

  it('raises DataError on bad files', () => {
    expect(() => readListOpsTsv(t.file('empty.tsv', 'Source\tTarget\n'))).toThrow(/no examples/);
    expect(() => readListOpsTsv(t.file('lab.tsv', '[MAX 1 ]\t12\n'))).toThrow(/lab.tsv:1: label 12 out of range/);
    expect(() => readListOpsTsv(t.file('nan.tsv', '[MAX 1 ]\tx\n'))).toThrow(/not an integer/);
    expect(() => readListOpsTsv(t.file('col.tsv', '[MAX 1 ]\n'))).toThrow(/2 tab-separated columns/);
    expect(() => readListOpsTsv(t.file('wrong.tsv', '[MAX 1 ]\t3\n'), true)).toThrow(/evaluates to 1/);
    expect(() => readListOpsTsv(`${t.dir}/missing.tsv`)).toThrow(DataError);
  });
});
