/**
 * BENCHMARKS.md is put together from one section per benchmark script (bench/results/*.md), each written whole by
 * its own run, so re-running one benchmark never leaves another's figures half-updated.
 */
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Sections in reading order; any other file in bench/results follows them alphabetically. */
const ORDER = [
  'sim.md',
  'reward.md',
  'progress-model-gpu.md',
  'providers.md',
  'learn.md',
  'pendulum.md',
  'bridge.md',
  'rig.md',
  'remote-learner.md',
];

export function composeBenchmarks(repoRoot: string): string {
  const dir = join(repoRoot, 'bench', 'results');
  const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.md')) : [];
  files.sort((a, b) => {
    const ia = ORDER.indexOf(a);
    const ib = ORDER.indexOf(b);
    return (ia < 0 ? ORDER.length : ia) - (ib < 0 ? ORDER.length : ib) || a.localeCompare(b);
  });
  const out = [
    '# Benchmarks',
    '',
    'Each section below is written by one benchmark script in one run (the command is named in the section). ' +
      'Figures are ratios against a baseline measured in the same run on the same machine; absolute rates are ' +
      'context only. Regenerate a section with its command; this file is reassembled each time.',
    '',
  ];
  for (const f of files) out.push(readFileSync(join(dir, f), 'utf8').trim(), '');
  const path = join(repoRoot, 'BENCHMARKS.md');
  writeFileSync(path, out.join('\n'));
  return path;
}

/** Writes one section and reassembles BENCHMARKS.md. */
export function writeSection(repoRoot: string, name: string, markdown: string): string {
  writeFileSync(join(repoRoot, 'bench', 'results', name), markdown.trim() + '\n');
  return composeBenchmarks(repoRoot);
}
