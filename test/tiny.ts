/**
 * The options of a tiny generated-ListOps training run shared by the CLI, distributed and save
 * tests: one layer, D 16, small splits, no progress bar (a few seconds per run).
 * @param train number of generated training expressions
 */
export function tinyListops(train = 48): string[] {
  const model = ['--layers', '1', '--embed-dim', '16', '--hidden-dim', '16', '--z-dim', '8', '--n-dim', '2'];
  return ['--listops-train', String(train), '--listops-valid', '16', '--listops-test', '8', '--batch-size', '8', ...model, '--quiet'];
}
