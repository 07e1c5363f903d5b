import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { mainJobSaveDir } from '../../src/cli/train.js';

const root = mkdtempSync(join(tmpdir(), 'mega-mainjob-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

it('the no-argument main job never reuses a folder that holds a run', () => {
  const ck = join(root, 'checkpoints');
  expect(mainJobSaveDir(ck)).toBe(ck);
  mkdirSync(ck, { recursive: true });
  expect(mainJobSaveDir(ck)).toBe(ck); // an empty folder is free
  writeFileSync(join(ck, 'checkpoint_last.safetensors'), 'x');
  expect(mainJobSaveDir(ck)).toBe(join(ck, 'run-2'));
  mkdirSync(join(ck, 'run-2'));
  writeFileSync(join(ck, 'run-2', 'checkpoint_last.state.safetensors'), 'x');
  expect(mainJobSaveDir(ck)).toBe(join(ck, 'run-3'));
});
