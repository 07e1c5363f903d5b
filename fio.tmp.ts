import { readFileSync } from 'node:fs';
import { TRAIN_OPTIONS } from './src/train/args.ts';
const flags = readFileSync('/tmp/fio-readme-flags.txt', 'utf8').trim().split('\n');
const shorts = new Set(Object.values(TRAIN_OPTIONS).map((s) => s.short).filter(Boolean));
for (const f of flags) {
  const k = f.replace(/^--?/, '').replace(/-/g, '_');
  if (f.startsWith('--') ? !(k in TRAIN_OPTIONS) && !(k.startsWith('no_') && k.slice(3) in TRAIN_OPTIONS) : !shorts.has(k)) console.log('missing', f);
}
console.log(flags.length, 'flags checked');
