/** `pbridge inspect`: what an arbitrary MJCF contains and how fast it steps with zero control. */
import { loadMujoco, modelFromFile, namesOf } from '../sim/mujoco.ts';

export interface InspectReport {
  file: string;
  nq: number;
  nv: number;
  nu: number;
  nbody: number;
  ngeom: number;
  nmesh: number;
  timestep: number;
  bodies: string[];
  cameras: string[];
  actuators: string[];
  steps: number;
  steps_per_s: number;
  simulated_s: number;
  finite: boolean;
}

/** Loads the file and steps it with zero control for `seconds` of wall-clock time. */
export async function inspectModel(path: string, seconds = 2): Promise<InspectReport> {
  const mj = await loadMujoco();
  const model = modelFromFile(mj, path);
  const data = new mj.MjData(model);
  try {
    const report: InspectReport = {
      file: path,
      nq: model.nq,
      nv: model.nv,
      nu: model.nu,
      nbody: model.nbody,
      ngeom: model.ngeom,
      nmesh: model.nmesh,
      timestep: model.opt.timestep,
      bodies: namesOf(mj, model, 'body'),
      cameras: namesOf(mj, model, 'camera'),
      actuators: namesOf(mj, model, 'actuator'),
      steps: 0,
      steps_per_s: 0,
      simulated_s: 0,
      finite: true,
    };
    const start = performance.now();
    const deadline = start + seconds * 1000;
    let steps = 0;
    // Check the clock every 100 steps: reading it costs more than a small model's step.
    while (performance.now() < deadline) {
      for (let i = 0; i < 100; i++) mj.mj_step(model, data);
      steps += 100;
    }
    const elapsed = (performance.now() - start) / 1000;
    report.steps = steps;
    report.steps_per_s = steps / elapsed;
    report.simulated_s = data.time;
    report.finite = Array.from(data.qpos).every(Number.isFinite);
    return report;
  } finally {
    data.delete();
    model.delete();
  }
}
