/**
 * ListOps (LRA, Nangia & Bowman 2018): a seeded generator following LRA's
 * `lra_benchmarks/data/listops.py`, an evaluator / parser, and a reader for the LRA TSV files.
 *
 * Expressions are prefix trees over the digits 0–9 with operators `[MAX`, `[MIN`, `[MED` (median,
 * integer part of the mean of the two middle values for an even count, as `int(np.median)`) and
 * `[SM` (SUM_MOD: sum mod 10); each operator application is closed by `]`. Printed form (no
 * parentheses): `[MAX 2 9 [MIN 4 7 ] 0 ]`. The LRA TSV files wrap the same tokens in `(` `)`, which
 * the parser and reader drop. Label = value of the expression (0–9).
 *
 * Generation (LRA algorithm, our PRNG {@link Rng}): at each node (root depth 1) draw `r ~ U[0,1)`,
 * or take `r = 1` at `maxDepth`; `r > valueProb` gives a uniform digit, otherwise an operator (uniform
 * among the four) with `U{2..maxArgs}` children. Length in tokens = digits + 2 per operator; trees
 * whose length lies outside `[minLength, maxLength]` are redrawn. LRA's own defaults
 * (`500 < length < 2000`, depth 10, 10 args) are `minLength 501, maxLength 1999`.
 */

import type { TokenExample } from './batch.js';
import { DataError } from './errors.js';
import { bytesToString, checkInt, parseLabel, readBytes } from './files.js';
import { Rng } from './rng.js';
import { Dictionary, type EncodeOptions } from './vocab.js';

/** ListOps operator names (the token is `[` + name). */
export type ListOpsOp = 'MIN' | 'MAX' | 'MED' | 'SM';
/** Operators in LRA's order `[MIN, MAX, MED, SUM_MOD]`. */
export const LISTOPS_OPERATORS: readonly ListOpsOp[] = ['MIN', 'MAX', 'MED', 'SM'];
/** Closing token. */
export const LISTOPS_END = ']';

/** An expression tree: a digit or an operator applied to sub-trees. */
export type ListOpsTree = number | { op: ListOpsOp; args: ListOpsTree[] };

/** One ListOps example: the expression text (space-separated tokens) and its value. */
export interface ListOpsExample {
  /** Token string, e.g. `[MAX 2 9 [MIN 4 7 ] 0 ]` (may contain `(`/`)` when read from LRA TSV). */
  source: string;
  /** Value of the expression, 0–9. */
  label: number;
}

/** Generator options (defaults = LRA's: depth 10, 10 args, 501..1999 tokens). */
export interface ListOpsOptions {
  /** Maximum tree depth (root = 1). Default 10. */
  maxDepth?: number;
  /** Maximum children per operator (>= 2). Default 10. */
  maxArgs?: number;
  /** Minimum length in tokens (inclusive). Default 501. */
  minLength?: number;
  /** Maximum length in tokens (inclusive). Default 1999. */
  maxLength?: number;
  /** Probability threshold of LRA's `VALUE_P` (a node is an operator when `r <= valueProb`). Default 0.25. */
  valueProb?: number;
  /** Keep only distinct expressions, as LRA does (default true). */
  unique?: boolean;
  /** Give up after this many rejected draws (default 1 000 000). */
  maxAttempts?: number;
}

/** Value of one operator applied to its argument values. */
function applyOp(op: ListOpsOp, v: number[]): number {
  switch (op) {
    case 'MAX':
      return v.reduce((a, b) => (b > a ? b : a), -Infinity);
    case 'MIN':
      return v.reduce((a, b) => (b < a ? b : a), Infinity);
    case 'SM':
      return v.reduce((a, b) => a + b, 0) % 10;
    case 'MED': {
      const s = [...v].sort((a, b) => a - b);
      const m = s.length >> 1;
      return s.length % 2 === 1 ? s[m]! : Math.floor((s[m - 1]! + s[m]!) / 2);
    }
  }
}

/** Value of an expression tree (iterative: an expression from a file may nest deeper than the call stack). */
export function evaluateListOps(tree: ListOpsTree): number {
  if (typeof tree === 'number') return tree;
  const stack: Array<{ node: Exclude<ListOpsTree, number>; next: number; values: number[] }> = [{ node: tree, next: 0, values: [] }];
  for (;;) {
    const f = stack[stack.length - 1]!;
    if (f.next < f.node.args.length) {
      const a = f.node.args[f.next++]!;
      if (typeof a === 'number') f.values.push(a);
      else stack.push({ node: a, next: 0, values: [] });
      continue;
    }
    const v = applyOp(f.node.op, f.values);
    stack.pop();
    if (stack.length === 0) return v;
    stack[stack.length - 1]!.values.push(v);
  }
}

/** Tokens of an expression tree (prefix form, no parentheses). */
export function listOpsTokens(tree: ListOpsTree, out: string[] = []): string[] {
  if (typeof tree === 'number') {
    out.push(String(tree));
  } else {
    out.push(`[${tree.op}`);
    for (const a of tree.args) listOpsTokens(a, out);
    out.push(LISTOPS_END);
  }
  return out;
}

/** Printed form of a tree, e.g. `[MAX 2 9 [MIN 4 7 ] 0 ]`. */
export function listOpsToString(tree: ListOpsTree): string {
  return listOpsTokens(tree).join(' ');
}

/**
 * Parse a ListOps expression (tokens separated by whitespace; `(` and `)` ignored).
 * @param where name for error messages (e.g. `file:line`)
 * @throws DataError for an unknown token, an unbalanced `]`, an operator with no argument or trailing tokens
 */
export function parseListOps(source: string, where = 'listops'): ListOpsTree {
  const stack: { op: ListOpsOp; args: ListOpsTree[] }[] = [];
  let root: ListOpsTree | undefined;
  const toks = source.split(/\s+/).filter((t) => t !== '' && t !== '(' && t !== ')');
  const emit = (node: ListOpsTree, i: number): void => {
    if (stack.length > 0) stack[stack.length - 1]!.args.push(node);
    else if (root === undefined) root = node;
    else throw new DataError(`${where}: token ${i + 1} ${JSON.stringify(toks[i])} follows a complete expression (expected end)`);
  };
  toks.forEach((t, i) => {
    if (/^[0-9]$/.test(t)) emit(Number(t), i);
    else if (t === LISTOPS_END) {
      const node = stack.pop();
      if (!node) throw new DataError(`${where}: token ${i + 1} "]" closes nothing (expected an operator before it)`);
      if (node.args.length === 0) throw new DataError(`${where}: token ${i + 1}: [${node.op} has no arguments (expected >= 1)`);
      emit(node, i);
    } else if (t.startsWith('[') && (LISTOPS_OPERATORS as readonly string[]).includes(t.slice(1))) {
      if (stack.length === 0 && root !== undefined) {
        throw new DataError(`${where}: token ${i + 1} ${JSON.stringify(t)} follows a complete expression (expected end)`);
      }
      stack.push({ op: t.slice(1) as ListOpsOp, args: [] });
    } else {
      throw new DataError(`${where}: token ${i + 1} ${JSON.stringify(t.slice(0, 20))} (expected a digit, [MAX, [MIN, [MED, [SM or ])`);
    }
  });
  if (stack.length > 0) throw new DataError(`${where}: ${stack.length} unclosed operator(s) (expected "]")`);
  if (root === undefined) throw new DataError(`${where}: empty expression (expected at least one token)`);
  return root;
}

function resolve(opts: ListOpsOptions): Required<ListOpsOptions> {
  const o: Required<ListOpsOptions> = {
    maxDepth: opts.maxDepth ?? 10,
    maxArgs: opts.maxArgs ?? 10,
    minLength: opts.minLength ?? 501,
    maxLength: opts.maxLength ?? 1999,
    valueProb: opts.valueProb ?? 0.25,
    unique: opts.unique ?? true,
    maxAttempts: opts.maxAttempts ?? 1000000,
  };
  checkInt('maxDepth', o.maxDepth, 1);
  checkInt('maxArgs', o.maxArgs, 2);
  checkInt('minLength', o.minLength, 1);
  checkInt('maxLength', o.maxLength, o.minLength);
  checkInt('maxAttempts', o.maxAttempts, 1);
  if (!(o.valueProb >= 0 && o.valueProb <= 1)) throw new DataError(`valueProb = ${o.valueProb}: expected a number in [0, 1]`);
  return o;
}

/** One draw of LRA's `generate_tree(depth, max_depth, max_args)`; returns the tree and its length. */
function drawTree(rng: Rng, depth: number, o: Required<ListOpsOptions>): { tree: ListOpsTree; length: number } {
  const r = depth < o.maxDepth ? rng.next() : 1;
  if (r > o.valueProb) return { tree: rng.int(10), length: 1 };
  const n = rng.intBetween(2, o.maxArgs);
  const args: ListOpsTree[] = [];
  let length = 2;
  for (let i = 0; i < n; i++) {
    const sub = drawTree(rng, depth + 1, o);
    args.push(sub.tree);
    length += sub.length;
  }
  return { tree: { op: rng.choice(LISTOPS_OPERATORS), args }, length };
}

/**
 * Draw one tree whose length is within `[minLength, maxLength]` (rejection sampling).
 * @throws DataError after `maxAttempts` rejected draws
 */
export function generateListOpsTree(rng: Rng, opts: ListOpsOptions = {}): ListOpsTree {
  const o = resolve(opts);
  for (let a = 0; a < o.maxAttempts; a++) {
    const { tree, length } = drawTree(rng, 1, o);
    if (length >= o.minLength && length <= o.maxLength) return tree;
  }
  throw new DataError(
    `listops: no tree of length ${o.minLength}..${o.maxLength} in ${o.maxAttempts} ` +
      `draws (maxDepth ${o.maxDepth}, maxArgs ${o.maxArgs}): expected reachable bounds`,
  );
}

/**
 * Generate `count` ListOps examples deterministically from `seed` (distinct ones unless `unique: false`).
 * @throws DataError for invalid options or unreachable length bounds
 */
export function generateListOps(count: number, seed: number, opts: ListOpsOptions = {}): ListOpsExample[] {
  checkInt('count', count, 0);
  const o = resolve(opts);
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const out: ListOpsExample[] = [];
  let attempts = 0;
  while (out.length < count) {
    const tree = generateListOpsTree(rng, o);
    const source = listOpsToString(tree);
    if (o.unique) {
      if (seen.has(source)) {
        if (++attempts >= o.maxAttempts) {
          throw new DataError(`listops: only ${out.length} distinct expressions after ${o.maxAttempts} duplicates (expected ${count})`);
        }
        continue;
      }
      seen.add(source);
    }
    out.push({ source, label: evaluateListOps(tree) });
  }
  return out;
}

/** The ListOps symbol dictionary: specials, then `[MIN [MAX [MED [SM ] 0..9` (ids 4..18). */
export function listOpsDictionary(): Dictionary {
  const ops = LISTOPS_OPERATORS.map((o) => `[${o}`);
  return new Dictionary([...ops, LISTOPS_END, ...Array.from({ length: 10 }, (_, d) => String(d))]);
}

/**
 * Read an LRA ListOps TSV file (`Source\tTarget` header optional; columns: expression, label 0–9).
 * @param validate also parse each expression and check that its value equals the label (default false)
 * @throws DataError for an unreadable or empty file, a missing column or a bad label
 */
export function readListOpsTsv(path: string, validate = false): ListOpsExample[] {
  const text = bytesToString(readBytes(path));
  const out: ListOpsExample[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.replace(/\r$/, '');
    if (line.trim() === '') continue;
    const where = `${path}:${i + 1}`;
    const cols = line.split('\t');
    if (i === 0 && cols[0]?.trim().toLowerCase() === 'source') continue;
    if (cols.length < 2) throw new DataError(`${where}: expected 2 tab-separated columns (text, label), got ${cols.length}`);
    const source = cols[0]!.trim();
    if (source === '') throw new DataError(`${where}: empty expression (expected ListOps tokens)`);
    const label = parseLabel(cols[1]!, where, 10);
    if (validate) {
      const v = evaluateListOps(parseListOps(source, where));
      if (v !== label) throw new DataError(`${where}: label ${label} but the expression evaluates to ${v}`);
    }
    out.push({ source, label });
  }
  if (out.length === 0) throw new DataError(`${path}: no examples (expected at least one line "text<TAB>label")`);
  return out;
}

/**
 * Encode ListOps examples with a symbol dictionary (parentheses dropped; `</s>` appended unless
 * `appendEos: false`; truncation to `maxLength` keeps the first tokens).
 */
export function encodeListOps(examples: readonly ListOpsExample[], dict: Dictionary, opts?: EncodeOptions): TokenExample[] {
  return examples.map((e) => ({
    tokens: dict.encode(
      e.source.split(/\s+/).filter((t) => t !== '' && t !== '(' && t !== ')'),
      opts,
    ),
    label: e.label,
  }));
}
