/**
 * End to end in a real browser: `pbridge rollout --serve` in a child process, Debian's chromium driven by
 * playwright-core, the viewer page it serves. Checks that the scene arrives and draws (canvas pixels are not
 * one colour), that pose frames and the Phi plot advance, and saves a screenshot to test/artifacts/.
 *
 * Chromium: /usr/bin/chromium (`apt-get install -y chromium` on Debian; CI installs it). Elsewhere point
 * PBRIDGE_CHROME at any Chrome or Chromium binary, e.g.
 *   PBRIDGE_CHROME="/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" npx vitest run test/viewer
 * Without a browser the test is skipped with a message saying so.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const CHROME = process.env.PBRIDGE_CHROME ?? '/usr/bin/chromium';
const HAVE_CHROME = existsSync(CHROME);
if (!HAVE_CHROME) {
  console.warn(
    `viewer-browser: skipped, no browser at ${CHROME}. Install Debian's chromium (apt-get install -y chromium) ` +
      'or set PBRIDGE_CHROME to a Chrome/Chromium executable.',
  );
}

/** Flags for a headless, GPU-less, offline machine (WebGL falls back to SwiftShader). */
const CHROME_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const ARTIFACTS = join(import.meta.dirname, 'artifacts');

interface ViewerState {
  connection: string;
  sceneId: number;
  framesReceived: number;
  framesDropped: number;
  fps: number;
  episodes: number;
  thumbnails: number;
}

describe.skipIf(!HAVE_CHROME)('viewer in a real browser', () => {
  let server: ChildProcess | undefined;
  let context: BrowserContext | undefined;
  let profile = '';
  let url = '';
  const output: string[] = [];

  beforeAll(async () => {
    server = spawn(
      process.execPath,
      [
        'bin/pbridge.js',
        'rollout',
        '--env',
        'push',
        '--policy',
        'expert',
        '--serve',
        '--port',
        '0',
        '--num-envs',
        '2',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no viewer URL in 60 s:\n${output.join('')}`)), 60_000);
      const onData = (d: Buffer): void => {
        output.push(d.toString());
        const m = /viewer: (http:\/\/\S+)/.exec(output.join(''));
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      };
      server!.stdout!.on('data', onData);
      server!.stderr!.on('data', (d: Buffer) => output.push(d.toString()));
      server!.once('exit', (code) =>
        reject(new Error(`rollout --serve exited with ${code}:\n${output.join('')}`)),
      );
    });
    profile = mkdtempSync(join(tmpdir(), 'pbridge-chrome-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROME,
      headless: true,
      args: CHROME_FLAGS,
      viewport: { width: 1280, height: 720 },
    });
  }, 90_000);

  afterAll(async () => {
    await context?.close();
    if (server && server.exitCode === null) {
      server.kill('SIGTERM');
      await new Promise((r) => server!.once('exit', r));
    }
    if (profile) rmSync(profile, { recursive: true, force: true });
  });

  // Page-side code is passed as strings: this file is type-checked for Node, without the DOM library.
  const state = async (page: Page): Promise<ViewerState> =>
    (await page.evaluate('window.__pbridge.state')) as ViewerState;

  it('shows the scene, advances frames and plots, and draws a non-blank canvas', async () => {
    const page = await context!.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(url);
    await page.waitForFunction(
      '!!window.__pbridge && window.__pbridge.state.sceneId > 0 && window.__pbridge.state.framesReceived > 5',
      undefined,
      { timeout: 30_000 },
    );
    expect((await state(page)).connection).toBe('open');
    expect(await page.title()).toMatch(/push/);

    const counter = async (): Promise<number> => Number(await page.locator('#frames').textContent());
    const phiPoints = async (): Promise<number> =>
      (await page.evaluate('window.__pbridge.plots.phi.points')) as number;
    const frames0 = await counter();
    const phi0 = await phiPoints();
    await page.waitForTimeout(1500);
    expect(await counter()).toBeGreaterThan(frames0);
    expect(await phiPoints()).toBeGreaterThan(phi0);

    // Pixels of the WebGL canvas (preserveDrawingBuffer keeps the last frame readable), scaled to 64x64.
    const pixels = (await page.evaluate(`(() => {
      const small = document.createElement('canvas');
      small.width = 64;
      small.height = 64;
      const g = small.getContext('2d');
      g.drawImage(document.getElementById('canvas3d'), 0, 0, 64, 64);
      const d = g.getImageData(0, 0, 64, 64).data;
      const colours = new Set();
      let notBackground = 0;
      for (let i = 0; i < d.length; i += 4) {
        colours.add(((d[i] >> 3) << 10) | ((d[i + 1] >> 3) << 5) | (d[i + 2] >> 3));
        // The page background is #15171c.
        if (Math.abs(d[i] - 0x15) + Math.abs(d[i + 1] - 0x17) + Math.abs(d[i + 2] - 0x1c) > 30) notBackground++;
      }
      return { colours: colours.size, notBackground };
    })()`)) as { colours: number; notBackground: number };
    expect(pixels.colours).toBeGreaterThan(20);
    expect(pixels.notBackground).toBeGreaterThan(64 * 64 * 0.05);

    mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: join(ARTIFACTS, 'viewer.png') });
    await page.selectOption('#layout', 'grid');
    await page.waitForTimeout(1000);
    await page.screenshot({ path: join(ARTIFACTS, 'viewer-grid.png') });
    const s = await state(page);
    console.log(
      `viewer-browser: ${s.framesReceived} frames, ${s.framesDropped} dropped, ${s.fps.toFixed(1)} fps (software GL), ` +
        `${s.episodes} episodes, ${s.thumbnails} thumbnails; screenshots in ${ARTIFACTS}`,
    );
    expect(s.thumbnails).toBeGreaterThan(0);
    expect(errors).toEqual([]);
  }, 90_000);
});
