/**
 * reach: move the fingertips to a red ball floating in the workspace. The simplest task: no contact with
 * objects, success when the grip site is within 3 cm of the ball's centre.
 */
import { fileURLToPath } from 'node:url';
import type { TaskDefinition } from '../../src/env/task.ts';
import { clamp01, towards } from '../common/expert-utils.ts';

const SUCCESS_RADIUS = 0.03;

const reach: TaskDefinition = {
  name: 'reach',
  instruction: 'move the gripper to the red ball',
  scenePath: fileURLToPath(new URL('./scene.xml', import.meta.url)),
  episodeSteps: 50,
  create(ctx) {
    const { data, robot } = ctx;
    const target = ctx.model.body_mocapid[ctx.id('body', 'target')]!;
    const grip = [0, 0, 0];
    const goal = [0, 0, 0];
    const distance = (): number => {
      robot.gripPos(data, grip);
      const m = data.mocap_pos;
      for (let k = 0; k < 3; k++) goal[k] = m[3 * target + k]!;
      return Math.hypot(grip[0]! - goal[0]!, grip[1]! - goal[1]!, grip[2]! - goal[2]!);
    };
    let startDistance = 1;
    return {
      obsNames: ['target.x', 'target.y', 'target.z'],
      reset(rng) {
        const m = data.mocap_pos;
        m[3 * target] = rng.uniform(0.3, 0.65);
        m[3 * target + 1] = rng.uniform(-0.25, 0.25);
        m[3 * target + 2] = rng.uniform(0.05, 0.35);
        startDistance = Math.max(distance(), 1e-6);
      },
      observe(out, offset) {
        const m = data.mocap_pos;
        for (let k = 0; k < 3; k++) out[offset + k] = m[3 * target + k]!;
      },
      isSuccess: () => distance() < SUCCESS_RADIUS,
      denseTerms(out) {
        out.cost_distance = -distance();
      },
      oracleProgress: () => clamp01(1 - distance() / startDistance),
      expert() {
        const action = new Float32Array(4);
        return {
          reset() {},
          act(out) {
            distance();
            towards(grip, goal, action);
            action[3] = 1;
            out.set(action);
          },
        };
      },
    };
  },
};

export default reach;
