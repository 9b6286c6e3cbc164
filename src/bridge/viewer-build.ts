/**
 * Builds the viewer page (viewer/, TypeScript + three.js) into static files, on demand: the first server start
 * after a fresh clone or a change to the viewer's sources builds it, later starts reuse the build.
 * `npm run build:viewer` (`pbridge build-viewer`) does the same ahead of time.
 *
 * The bundler is esbuild's API (the esbuild that vite 7 installs and package-lock.json pins): 0.5 s for the
 * bundle where `vite build` took 5-17 s on the 2-core machine, which matters because the first `rollout --serve`
 * and the browser test pay it. If esbuild cannot be loaded, vite's own build is the fallback.
 *
 * Why on demand rather than a committed bundle or a `prepare` script: generated files in git go stale, and
 * `npm ci && npm start` / `npm test` must work on a fresh clone with no extra step. The output goes to
 * node_modules/.cache/progress-bridge/viewer (ignored by git, eslint and prettier), keyed by a hash of every source file that ends up in the bundle, and is
 * replaced atomically (built in a temporary directory, then renamed) so concurrent builders never serve half a
 * build.
 */
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const VIEWER_SRC = join(REPO, 'viewer');
/** Under node_modules/.cache: git, eslint and prettier all leave it alone, and `npm ci` starts it afresh. */
export const VIEWER_DIST = join(REPO, 'node_modules/.cache/progress-bridge/viewer');
const STAMP = '.build-hash';

function sourceFiles(): string[] {
  const files: string[] = [];
  for (const dir of [VIEWER_SRC, join(REPO, 'src/protocol')]) {
    for (const name of readdirSync(dir)) {
      const p = join(dir, name);
      if (/\.(ts|html|css)$/.test(name) && statSync(p).isFile()) files.push(p);
    }
  }
  files.push(join(REPO, 'src/sim/errors.ts'), join(REPO, 'package-lock.json'));
  return files.filter((f) => existsSync(f)).sort();
}

/** Hash of the sources and the locked dependency versions (a three.js upgrade must rebuild too). */
export function viewerSourceHash(): string {
  const h = createHash('sha256');
  for (const f of sourceFiles())
    h.update(f.slice(REPO.length)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex').slice(0, 16);
}

/** True when the build directory holds a build of the current sources. */
export function viewerIsBuilt(): boolean {
  try {
    return readFileSync(join(VIEWER_DIST, STAMP), 'utf8') === viewerSourceHash();
  } catch {
    return false;
  }
}

let building: Promise<string> | undefined;

/** Returns the directory of an up-to-date viewer build, building it first if needed. */
export function ensureViewerBuilt(log: (line: string) => void = () => {}): Promise<string> {
  building ??= build(log).finally(() => {
    building = undefined;
  });
  return building;
}

async function build(log: (line: string) => void): Promise<string> {
  const hash = viewerSourceHash();
  if (viewerIsBuilt()) return VIEWER_DIST;
  const t0 = performance.now();
  log('building the viewer (first start after a change; a few seconds)...');
  const tmp = `${VIEWER_DIST}.tmp-${process.pid}-${Date.now()}`;
  await bundle(tmp);
  writeFileSync(join(tmp, STAMP), hash);
  // Another process may have finished first: keep whichever complete build is there if it is current.
  if (viewerIsBuilt()) {
    rmSync(tmp, { recursive: true, force: true });
    return VIEWER_DIST;
  }
  const old = `${VIEWER_DIST}.old-${process.pid}-${Date.now()}`;
  if (existsSync(VIEWER_DIST)) renameSync(VIEWER_DIST, old);
  mkdirSync(dirname(VIEWER_DIST), { recursive: true });
  try {
    renameSync(tmp, VIEWER_DIST);
  } catch (err) {
    if (!viewerIsBuilt()) throw err;
    rmSync(tmp, { recursive: true, force: true });
  }
  rmSync(old, { recursive: true, force: true });
  log(`viewer built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  return VIEWER_DIST;
}

async function bundle(outDir: string): Promise<void> {
  let esbuild: typeof import('esbuild') | undefined;
  try {
    esbuild = await import('esbuild');
  } catch {
    esbuild = undefined;
  }
  if (!esbuild) {
    const vite = await import('vite');
    await vite.build({
      root: VIEWER_SRC,
      base: './',
      configFile: false,
      logLevel: 'warn',
      publicDir: false,
      build: {
        outDir,
        emptyOutDir: true,
        target: 'es2022',
        reportCompressedSize: false,
        chunkSizeWarningLimit: 2048,
      },
    });
    return;
  }
  mkdirSync(outDir, { recursive: true });
  await esbuild.build({
    entryPoints: [join(VIEWER_SRC, 'main.ts')],
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    minify: true,
    outfile: join(outDir, 'main.js'),
    logLevel: 'warning',
  });
  const html = readFileSync(join(VIEWER_SRC, 'index.html'), 'utf8').replace(
    'src="./main.ts"',
    'src="./main.js"',
  );
  if (!html.includes('src="./main.js"')) throw new Error('viewer/index.html must load ./main.ts');
  writeFileSync(join(outDir, 'index.html'), html);
  writeFileSync(join(outDir, 'style.css'), readFileSync(join(VIEWER_SRC, 'style.css')));
}
