import { loadFairseqModel } from './src/train/fairseq-eval.ts';
import { generateFairseq } from './src/train/fairseq-generate.ts';
process.chdir('test/fairseq/translation');
const fm = loadFairseqModel('checkpoints/checkpoint_last.pt');
const r = generateFairseq(fm, 'data-bin', { split: 'test', beam: 2, nbest: 1, batchSize: 4, maxLenA: 0, maxLenB: 10, minLen: 1, lenpen: 1, unkpen: 0 });
console.log(r.lines.join('\n'));
