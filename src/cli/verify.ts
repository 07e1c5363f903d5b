/** `mega verify [--dtype f64|f32|both] [--verbose] FILE...`: runs golden cases of the `mega-golden/1` schema. */
import { parseFlags } from '../train/flags.js';
import { runFile, type CaseReport, type Precision } from '../verify/index.js';
import { UsageError } from './errors.js';

export const VERIFY_HELP = `Usage: mega verify [--dtype f64|f32|both] [--verbose] [--json] FILE...

Runs each golden case file (format mega-golden/1: reference outputs of the PyTorch release) and
compares every stored tensor with the tolerances of FORMAT.md. Prints one line per case and
precision: "PASS name" or "FAIL name tensor=... err=... tol=..." (or the reason it could not run),
then "N passed, M failed". Exit code 0 only if every case passes.

  --dtype    precision path(s) to run (default both)
  --verbose  also print every compared tensor: max abs error, scale, tolerance
  --json     print one JSON object per case instead`;

function line(r: CaseReport): string {
  const tag = `${r.name} [${r.precision}]`;
  if (r.pass) return `PASS ${tag}`;
  if (r.error) return `FAIL ${tag} error=${JSON.stringify(r.error)}`;
  if (r.tensors.length === 0) return `FAIL ${tag} error="no tensors compared"`;
  const worst = r.tensors.filter((t) => !t.pass).sort((a, b) => b.maxErr / (b.tol || 1) - a.maxErr / (a.tol || 1))[0];
  return `FAIL ${tag} tensor=${worst.name} err=${worst.maxErr.toExponential(3)} tol=${worst.tol.toExponential(3)}${worst.note ? ` (${worst.note})` : ''}`;
}

/** Runs the command; returns the exit code. */
export function verifyCommand(argv: string[], out: (s: string) => void): number {
  const parsed = parseFlags(
    argv,
    {
      dtype: { type: 'string', help: 'f64, f32 or both', group: 'main' },
      verbose: { type: 'boolean', help: 'every tensor', group: 'main' },
      json: { type: 'boolean', help: 'one JSON line per case', group: 'main' },
    },
    'verify',
  );
  const positionals = parsed.positionals;
  const values = { dtype: 'both', ...parsed.values } as { help?: boolean; dtype: string; verbose?: boolean; json?: boolean };
  if (values.help) {
    out(VERIFY_HELP);
    return 0;
  }
  const precs: Precision[] = values.dtype === 'both' ? ['f64', 'f32'] : values.dtype === 'f64' || values.dtype === 'f32' ? [values.dtype] : [];
  if (!precs.length) throw new UsageError(`--dtype must be f64, f32 or both, got '${values.dtype}'`);
  if (!positionals.length) throw new UsageError('verify: no case files given (see mega verify --help)');
  let passed = 0,
    failed = 0;
  for (const file of positionals) {
    for (const p of precs) {
      const r = runFile(file, p);
      if (r.pass) passed++;
      else failed++;
      if (values.json) {
        const worst = Math.max(0, ...r.tensors.map((t) => (t.tol > 0 ? t.maxErr / t.tol : t.maxErr > 0 ? Infinity : 0)));
        out(JSON.stringify({ case: r.name, file, precision: p, pass: r.pass, error: r.error, worstRatio: worst, tensors: r.tensors.length }));
      } else {
        out(line(r));
        if (values.verbose)
          for (const t of r.tensors)
            out(
              `    ${t.pass ? 'ok  ' : 'FAIL'} ${t.name} err=${t.maxErr.toExponential(3)} ` +
                `scale=${t.scale.toExponential(3)} tol=${t.tol.toExponential(3)}${t.note ? ` ${t.note}` : ''}`,
            );
      }
    }
  }
  out(`${passed} passed, ${failed} failed`);
  return failed === 0 ? 0 : 1;
}
