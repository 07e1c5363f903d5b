/**
 * vitest global setup: gives the test workers a file to record missing system pieces in
 * (`skipWithout` of test/system.ts) and, after the run, prints the one summary line of what was
 * skipped for want of which piece and how to get it.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { TestProject } from 'vitest/node';
import type { Piece } from './system.js';

/** What each piece is and where it comes from (Debian names; `.ci/run` installs them). */
const HOW_TO_GET: Readonly<Record<Piece, string>> = {
  mpirun: 'mpirun (openmpi-bin)',
  libmpi: 'libmpi through koffi (libopenmpi-dev; npm optional dependency koffi)',
  torchrun: 'torchrun (python3-torch)',
  netns: 'network namespaces (root + iproute2)',
  chromium: 'chromium (Debian package chromium)',
  gpu: 'a GPU mode for gpu.js (Dawn on Mesa 25 lavapipe: mesa-vulkan-drivers from bookworm-backports, libvulkan1)',
};

/** The summary line of a run that skipped tests (null when nothing was missing). */
export function missingSummary(pieces: readonly string[]): string | null {
  const known = [...new Set(pieces)].filter((p): p is Piece => p in HOW_TO_GET).sort();
  if (!known.length) return null;
  return `mega-ts: skipped the tests that need ${known.map((p) => HOW_TO_GET[p]).join('; ')} (.ci/run installs them all; with CI set they fail instead)`;
}

/** Provides the record file; the returned teardown prints the summary line. */
export default function setup(project: TestProject): () => void {
  const dir = mkdtempSync(join(tmpdir(), 'mega-test-'));
  const file = join(dir, 'missing-pieces.txt');
  project.provide('missingPiecesFile', file);
  return () => {
    let lines: string[] = [];
    try {
      lines = readFileSync(file, 'utf8').split('\n').filter(Boolean);
    } catch {
      // nothing was skipped
    }
    const line = missingSummary(lines);
    if (line) process.stdout.write(`\n${line}\n`);
    rmSync(dir, { recursive: true, force: true });
  };
}
