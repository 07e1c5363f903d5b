/**
 * Options of the tiny training runs shared by the CLI, API, browser, package, distributed and
 * save tests: one layer, D 16, no progress bar (a few seconds per run).
 */

/** The tiny model: one layer, D 16, H 16, Z 8, N 2. */
export const TINY_MODEL: readonly string[] = ['--layers', '1', '--embed-dim', '16', '--hidden-dim', '16', '--z-dim', '8', '--n-dim', '2'];

/**
 * A tiny generated-ListOps run of batch 8.
 * @param train number of generated training expressions
 */
export function tinyListops(train = 48): string[] {
  return ['--listops-train', String(train), '--listops-valid', '16', '--listops-test', '8', '--batch-size', '8', ...TINY_MODEL, '--quiet'];
}

/**
 * The tiny model trained for a few updates of batch 4 on any task (a checkpoint to load, not to learn).
 * @param updates `--max-update`
 */
export function tinyRun(updates: number): string[] {
  return [...TINY_MODEL, '--batch-size', '4', '--max-update', String(updates), '--quiet'];
}
