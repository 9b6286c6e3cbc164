/**
 * Section 3: the physical limit. Native MuJoCo (C, Debian's libmujoco-dev) against the WASM build on the same
 * (down-converted) MJCF with the same recorded ctrl replay. bench/native/step.c is compiled here with gcc when the
 * MuJoCo headers are installed; otherwise this section is skipped with instructions.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMujoco, modelFromFile, type MjModel } from '../src/sim/mujoco.ts';
import { downconvertScene } from './downconvert.ts';
import { encodeReplay, playRaw, replaySteps, type Replay } from './replay.ts';
import { median, progress, timeBoth } from './stats.ts';

export const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));
const SOURCE = join(REPO_ROOT, 'bench/native/step.c');
const BINARY = join(REPO_ROOT, 'bench/native/build/step');
const HEADER = '/usr/include/mujoco/mujoco.h';
export const OUT_DIR = join(REPO_ROOT, 'bench/out');

export const NATIVE_HOWTO =
  'install the MuJoCo C library and headers (Debian/Ubuntu: `apt-get install -y libmujoco-dev`) and gcc, then re-run `npm run bench`';

export interface NativeBuild {
  ok: boolean;
  /** Why it is unavailable, when not ok. */
  reason?: string;
  /** mjVERSION_HEADER of the installed headers (e.g. 222 = 2.2.2). */
  headerVersion?: string;
}

/** Compiles step.c (when the headers exist and the binary is older than the source). */
export function buildNative(): NativeBuild {
  if (!existsSync(HEADER)) return { ok: false, reason: `${HEADER} not found` };
  const headerVersion = /#define\s+mjVERSION_HEADER\s+(\d+)/.exec(readFileSync(HEADER, 'utf8'))?.[1];
  try {
    if (!existsSync(BINARY) || statSync(BINARY).mtimeMs < statSync(SOURCE).mtimeMs) {
      mkdirSync(join(REPO_ROOT, 'bench/native/build'), { recursive: true });
      execFileSync('gcc', ['-O2', '-o', BINARY, SOURCE, '-lmujoco', '-lm'], { stdio: 'pipe' });
    }
    return { ok: true, headerVersion };
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    return {
      ok: false,
      reason: `gcc failed: ${(e.stderr?.toString() || e.message).slice(0, 300)}`,
      headerVersion,
    };
  }
}

export interface NativeResult {
  task: string;
  /** MuJoCo version of the native library. */
  nativeVersion?: string;
  /** Median mj_step per CPU second. */
  nativeStepsPerSec?: number;
  wasmStepsPerSec?: number;
  /** WASM / native on the same converted model (per CPU second; `wallRatio` by wall clock). */
  ratio?: number;
  wallRatio?: number;
  changes: string[];
  convertedPath: string;
  error?: string;
}

interface StepJson {
  version?: string;
  rates?: number[];
  cpu_rates?: number[];
  error?: string;
}

function runNative(
  scene: string,
  replayFile: string,
  steps: number,
  warmup: number,
  repeats: number,
): StepJson {
  try {
    const out = execFileSync(BINARY, [scene, replayFile, String(steps), String(warmup), String(repeats)], {
      encoding: 'utf8',
      timeout: 120_000,
    });
    return JSON.parse(out.trim().split('\n').pop()!) as StepJson;
  } catch (err) {
    const e = err as { stdout?: string; message: string };
    const line = e.stdout?.trim().split('\n').pop();
    if (line?.startsWith('{')) return JSON.parse(line) as StepJson;
    return { error: e.message.slice(0, 300) };
  }
}

export interface NativeConfig {
  repeats: number;
  warmupSteps: number;
}

/** Native vs WASM raw loops on the task's down-converted scene, replaying `replay` (recorded in section 1). */
export async function measureNative(
  task: string,
  scenePath: string,
  replay: Replay,
  cfg: NativeConfig,
): Promise<NativeResult> {
  const outRoot = join(OUT_DIR, 'native', task);
  const converted = downconvertScene(scenePath, REPO_ROOT, outRoot);
  const replayFile = join(OUT_DIR, 'native', `${task}.replay.bin`);
  writeFileSync(replayFile, encodeReplay(replay));
  const result: NativeResult = { task, changes: converted.changes, convertedPath: converted.scenePath };

  const mj = await loadMujoco();
  let model: MjModel;
  try {
    model = modelFromFile(mj, converted.scenePath);
  } catch (err) {
    result.error = `WASM could not load the converted scene: ${(err as Error).message}`;
    return result;
  }
  const data = new mj.MjData(model);
  try {
    const steps = replaySteps(replay);
    playRaw(mj, model, data, replay, Math.max(steps, cfg.warmupSteps), 'basic');
    const wasm: number[] = [];
    const native: number[] = [];
    const wasmWall: number[] = [];
    const nativeWall: number[] = [];
    for (let r = 0; r < cfg.repeats; r++) {
      // One native process per repeat, interleaved with the WASM passes, so background load hits both alike.
      const n = runNative(converted.scenePath, replayFile, steps, cfg.warmupSteps, 1);
      if (n.error || !n.rates || !n.cpu_rates) {
        result.error = `native: ${n.error ?? 'no output'}`;
        return result;
      }
      result.nativeVersion = n.version;
      native.push(...n.cpu_rates);
      nativeWall.push(...n.rates);
      const t = timeBoth(() => playRaw(mj, model, data, replay, steps, 'basic'));
      wasm.push(steps / t.cpu);
      wasmWall.push(steps / t.wall);
    }
    result.nativeStepsPerSec = median(native);
    result.wasmStepsPerSec = median(wasm);
    // Median of per-repeat ratios: each native pass runs right before its WASM pass.
    result.ratio = median(wasm.map((w, i) => w / native[i]!));
    result.wallRatio = median(wasmWall.map((w, i) => w / nativeWall[i]!));
    progress(
      `native ${task}: native ${Math.round(result.nativeStepsPerSec)} mj_step/s (MuJoCo ${result.nativeVersion}), ` +
        `WASM ${Math.round(result.wasmStepsPerSec)} on the same converted model: ${result.ratio.toFixed(2)}x ` +
        `(wall clock ${result.wallRatio.toFixed(2)}x)`,
    );
    return result;
  } finally {
    data.delete();
    model.delete();
  }
}
