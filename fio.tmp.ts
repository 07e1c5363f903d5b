import { evaluateFairseq, loadFairseqModel } from './src/train/fairseq-eval.ts';
import { readFileSync } from 'node:fs';
for (const w of (process.argv[2] ?? 'lra-listops,lra-retrieval,lra-image,translation,lm').split(',')) {
  const e = JSON.parse(readFileSync(`test/fairseq/${w}/expected.json`, 'utf8'));
  for (const c of ['checkpoints/checkpoint_last.pt', 'checkpoints/phase1/checkpoint_last.pt']) {
    const t0 = Date.now();
    const fm = loadFairseqModel(`test/fairseq/${w}/${c}`);
    const r = evaluateFairseq(fm, `test/fairseq/${w}/data-bin`, 'valid');
    console.log(w, c, JSON.stringify(r), 'expected', JSON.stringify(e.verify[c].stored_args.exact), Date.now() - t0, 'ms');
  }
}
