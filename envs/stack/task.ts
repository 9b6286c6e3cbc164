/**
 * stack: pick up the 4.5 cm red cube and set it down on top of the 5.5 cm green cube. Two stages: grasp and
 * lift the red cube clear of the green one, then carry it over, lower it onto the green top and let go. Both
 * cubes start at random places (and yaws) in front of the robot, far enough apart that the open fingers can
 * reach either without touching the other.
 *
 * Success: the red cube sits on the green one (centres within 2 cm in xy, heights one half-edge each apart),
 * both upright and still, the green cube still on the table, and the fingers open. As in pick-place, the
 * release is part of the task: a cube held above the green one is not stacked.
 */
import { fileURLToPath } from 'node:url';
import type { TaskDefinition } from '../../src/env/task.ts';
import { clamp01 } from '../common/expert-utils.ts';
import {
  bodyPos,
  cubeSpanY,
  cubeUpright,
  freeBody,
  isHeld,
  linearSpeed,
  PickPlaceExpert,
  placeFree,
  rot6,
} from '../common/grasp.ts';

const RED = 0.045;
const GREEN = 0.055;
const RED_HALF = RED / 2;
const GREEN_HALF = GREEN / 2;
/** Red centre above green centre when stacked. */
const STACK_DZ = RED_HALF + GREEN_HALF;
const SUCCESS_XY = 0.02;
const SUCCESS_DZ = 0.006;
const X_RANGE = [0.35, 0.6] as const;
const Y_RANGE = [-0.2, 0.2] as const;
/** Open fingers reach 5.2 cm to either side of the grip site; this keeps them off the other cube. */
const MIN_SEPARATION = 0.13;
/** Red bottom this far above the green top counts as lifted clear. */
const CLEARANCE = 0.01;
const RELEASE_CLEARANCE = 0.003;

const stack: TaskDefinition = {
  name: 'stack',
  instruction: 'stack the red cube on the green cube',
  scenePath: fileURLToPath(new URL('./scene.xml', import.meta.url)),
  episodeSteps: 180,
  create(ctx) {
    const { data, robot } = ctx;
    const red = freeBody(ctx, 'red', 'red');
    const green = freeBody(ctx, 'green', 'green');
    const grip = new Float64Array(3);
    const r = new Float64Array(3);
    const g = new Float64Array(3);
    let startReach = 1;
    let startXY = 1;

    const read = (): void => {
      robot.gripPos(data, grip);
      bodyPos(data, red, r);
      bodyPos(data, green, g);
    };
    const pairXY = (): number => Math.hypot(r[0]! - g[0]!, r[1]! - g[1]!);
    const reach = (): number => Math.hypot(grip[0]! - r[0]!, grip[1]! - r[1]!, grip[2]! - r[2]!);
    const held = (): boolean => isHeld(data, robot, grip, r, cubeSpanY(data, red, RED));
    const lifted = (): number => clamp01((r[2]! - RED_HALF) / (GREEN + CLEARANCE));
    const onTop = (): boolean => pairXY() < SUCCESS_XY && Math.abs(r[2]! - g[2]! - STACK_DZ) < SUCCESS_DZ;
    const success = (): boolean =>
      onTop() &&
      Math.abs(g[2]! - GREEN_HALF) < 0.005 &&
      cubeUpright(data, red) > 0.97 &&
      cubeUpright(data, green) > 0.97 &&
      linearSpeed(data, red) < 0.05 &&
      (robot.gripperWidth(data) > cubeSpanY(data, red, RED) + 0.008 ||
        Math.hypot(grip[0]! - r[0]!, grip[1]! - r[1]!) > 0.06);

    return {
      obsNames: [
        'red.x',
        'red.y',
        'red.z',
        'red.rot.xx',
        'red.rot.yx',
        'red.rot.zx',
        'red.rot.xy',
        'red.rot.yy',
        'red.rot.zy',
        'green.x',
        'green.y',
        'green.z',
        'green.rot.xx',
        'green.rot.yx',
        'green.rot.zx',
        'green.rot.xy',
        'green.rot.yy',
        'green.rot.zy',
        'red_to_grip.x',
        'red_to_grip.y',
        'red_to_grip.z',
        'red_to_green.x',
        'red_to_green.y',
        'red_to_green.z',
      ],
      reset(rng) {
        const rx = rng.uniform(X_RANGE[0], X_RANGE[1]);
        const ry = rng.uniform(Y_RANGE[0], Y_RANGE[1]);
        let gx = 0;
        let gy = 0;
        do {
          gx = rng.uniform(X_RANGE[0], X_RANGE[1]);
          gy = rng.uniform(Y_RANGE[0], Y_RANGE[1]);
        } while (Math.hypot(gx - rx, gy - ry) < MIN_SEPARATION);
        placeFree(data, red, rx, ry, RED_HALF, rng.uniform(-Math.PI / 4, Math.PI / 4));
        placeFree(data, green, gx, gy, GREEN_HALF, rng.uniform(-Math.PI / 4, Math.PI / 4));
        ctx.mj.mj_forward(ctx.model, data);
        read();
        startReach = Math.max(reach(), 1e-6);
        // Resets keep the cubes 13 cm apart, so this never divides by ~0.
        startXY = Math.max(pairXY(), SUCCESS_XY + 0.01);
      },
      observe(out, offset) {
        read();
        for (let k = 0; k < 3; k++) out[offset + k] = r[k]!;
        rot6(data, red, out, offset + 3);
        for (let k = 0; k < 3; k++) out[offset + 9 + k] = g[k]!;
        rot6(data, green, out, offset + 12);
        for (let k = 0; k < 3; k++) out[offset + 18 + k] = grip[k]! - r[k]!;
        for (let k = 0; k < 3; k++) out[offset + 21 + k] = g[k]! - r[k]!;
      },
      isSuccess() {
        read();
        return success();
      },
      denseTerms(out) {
        read();
        const h = held();
        out.cost_reach = -reach();
        out.reward_grasp = h ? 1 : 0;
        out.reward_lift = h ? lifted() : 0;
        out.cost_red_to_green = -Math.hypot(r[0]! - g[0]!, r[1]! - g[1]!, r[2]! - g[2]! - STACK_DZ);
        out.reward_on_top = onTop() ? 1 : 0;
      },
      oracleProgress() {
        // Stage 1 [0, 0.5]: reach [0, 0.2], grasp 0.25, lift clear of the green top to 0.5.
        // Stage 2 [0.5, 1]: carry over the green cube to 0.8, lower onto it to 0.9, release 1.
        read();
        if (success()) return 1;
        const xy = pairXY();
        if (held()) {
          if (xy < SUCCESS_XY) {
            const above = clamp01((r[2]! - g[2]! - STACK_DZ) / (CLEARANCE + 0.02));
            return 0.8 + 0.1 * (1 - above);
          }
          const lift = lifted();
          if (lift < 1) return 0.25 + 0.25 * lift;
          return 0.5 + 0.3 * clamp01((startXY - xy) / (startXY - SUCCESS_XY));
        }
        if (onTop()) return 0.9;
        return 0.2 * clamp01(1 - reach() / startReach);
      },
      expert() {
        return new PickPlaceExpert(data, robot, {
          span: () => cubeSpanY(data, red, RED),
          // Red bottom ~2.5 cm above the green top while carried.
          carryZ: 0.12,
          object: (out) => bodyPos(data, red, out),
          goal(out) {
            bodyPos(data, green, out);
            out[2] = out[2]! + STACK_DZ + RELEASE_CLEARANCE;
          },
        });
      },
    };
  },
};

export default stack;
