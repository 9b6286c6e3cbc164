/**
 * pick-place: pick up a 4.5 cm red cube and put it down on a green disc drawn on the table. Both start at
 * random places in front of the robot, at least 15 cm apart, so the cube cannot just be nudged over. The
 * cube's yaw is random too; the hand cannot yaw, so a turned cube is pinched across two vertical edges, which
 * holds as well as a face-to-face grasp (the grasp tests use the cube's width along the finger axis).
 *
 * Success: the cube rests on the table (upright, still) with its centre within 3.5 cm of the disc's, and the
 * fingers have let go of it. Requiring the release means a policy cannot succeed by hovering the cube over
 * the target, which cameras could not tell from "placed" anyway.
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

const SIZE = 0.045;
const HALF = SIZE / 2;
const SUCCESS_RADIUS = 0.035;
const X_RANGE = [0.35, 0.6] as const;
const Y_RANGE = [-0.2, 0.2] as const;
const MIN_SEPARATION = 0.15;
/** Height of a lift that counts as fully lifted in the shaped terms. */
const LIFT_HEIGHT = 0.05;
/** The expert lets go this far above resting height; the drop is too small to topple the cube. */
const RELEASE_CLEARANCE = 0.003;

const pickPlace: TaskDefinition = {
  name: 'pick-place',
  instruction: 'pick up the red cube and place it on the green target',
  scenePath: fileURLToPath(new URL('./scene.xml', import.meta.url)),
  episodeSteps: 150,
  create(ctx) {
    const { data, robot } = ctx;
    const cube = freeBody(ctx, 'cube', 'cube');
    const target = ctx.model.body_mocapid[ctx.id('body', 'target')]!;
    const grip = new Float64Array(3);
    const pos = new Float64Array(3);
    const goal = new Float64Array(3);
    let startReach = 1;
    let startXY = 1;

    const read = (): void => {
      robot.gripPos(data, grip);
      bodyPos(data, cube, pos);
      const m = data.mocap_pos;
      goal[0] = m[3 * target]!;
      goal[1] = m[3 * target + 1]!;
      goal[2] = HALF;
    };
    const targetXY = (): number => Math.hypot(pos[0]! - goal[0]!, pos[1]! - goal[1]!);
    const released = (): boolean =>
      robot.gripperWidth(data) > cubeSpanY(data, cube, SIZE) + 0.008 ||
      Math.hypot(grip[0]! - pos[0]!, grip[1]! - pos[1]!) > 0.06;
    const success = (): boolean =>
      targetXY() < SUCCESS_RADIUS &&
      Math.abs(pos[2]! - HALF) < 0.005 &&
      cubeUpright(data, cube) > 0.97 &&
      linearSpeed(data, cube) < 0.05 &&
      released();

    return {
      obsNames: [
        'cube.x',
        'cube.y',
        'cube.z',
        'cube.rot.xx',
        'cube.rot.yx',
        'cube.rot.zx',
        'cube.rot.xy',
        'cube.rot.yy',
        'cube.rot.zy',
        'target.x',
        'target.y',
        'target.z',
        'cube_to_grip.x',
        'cube_to_grip.y',
        'cube_to_grip.z',
      ],
      reset(rng) {
        const cx = rng.uniform(X_RANGE[0], X_RANGE[1]);
        const cy = rng.uniform(Y_RANGE[0], Y_RANGE[1]);
        let tx = 0;
        let ty = 0;
        do {
          tx = rng.uniform(X_RANGE[0], X_RANGE[1]);
          ty = rng.uniform(Y_RANGE[0], Y_RANGE[1]);
        } while (Math.hypot(tx - cx, ty - cy) < MIN_SEPARATION);
        placeFree(data, cube, cx, cy, HALF, rng.uniform(-Math.PI / 4, Math.PI / 4));
        const m = data.mocap_pos;
        m[3 * target] = tx;
        m[3 * target + 1] = ty;
        m[3 * target + 2] = 0;
        ctx.mj.mj_forward(ctx.model, data);
        read();
        startReach = Math.max(Math.hypot(grip[0]! - pos[0]!, grip[1]! - pos[1]!, grip[2]! - pos[2]!), 1e-6);
        // Resets keep the cube 15 cm from the target, so this never divides by ~0.
        startXY = Math.max(targetXY(), SUCCESS_RADIUS + 0.01);
      },
      observe(out, offset) {
        read();
        for (let k = 0; k < 3; k++) out[offset + k] = pos[k]!;
        rot6(data, cube, out, offset + 3);
        for (let k = 0; k < 3; k++) out[offset + 9 + k] = data.mocap_pos[3 * target + k]!;
        for (let k = 0; k < 3; k++) out[offset + 12 + k] = grip[k]! - pos[k]!;
      },
      isSuccess() {
        read();
        return success();
      },
      denseTerms(out) {
        read();
        const held = isHeld(data, robot, grip, pos, cubeSpanY(data, cube, SIZE));
        const lift = clamp01((pos[2]! - HALF) / LIFT_HEIGHT);
        out.cost_reach = -Math.hypot(grip[0]! - pos[0]!, grip[1]! - pos[1]!, grip[2]! - pos[2]!);
        out.reward_grasp = held ? 1 : 0;
        out.reward_lift = held ? lift : 0;
        out.cost_cube_to_target = -targetXY();
        out.reward_placed = targetXY() < SUCCESS_RADIUS && Math.abs(pos[2]! - HALF) < 0.005 ? 1 : 0;
      },
      oracleProgress() {
        // Stages: reach [0, 0.2], grasp 0.3, lift to 0.45, transport to 0.8, lower to 0.9, release 1.
        read();
        if (success()) return 1;
        const xy = targetXY();
        const lift = clamp01((pos[2]! - HALF) / LIFT_HEIGHT);
        if (isHeld(data, robot, grip, pos, cubeSpanY(data, cube, SIZE))) {
          if (xy < SUCCESS_RADIUS) return 0.8 + 0.1 * (1 - lift);
          return 0.3 + 0.15 * lift + 0.35 * clamp01((startXY - xy) / (startXY - SUCCESS_RADIUS));
        }
        if (xy < SUCCESS_RADIUS && Math.abs(pos[2]! - HALF) < 0.005) return 0.9;
        const reach = Math.hypot(grip[0]! - pos[0]!, grip[1]! - pos[1]!, grip[2]! - pos[2]!);
        return 0.2 * clamp01(1 - reach / startReach);
      },
      expert() {
        return new PickPlaceExpert(data, robot, {
          span: () => cubeSpanY(data, cube, SIZE),
          carryZ: 0.1,
          object: (out) => bodyPos(data, cube, out),
          goal(out) {
            const m = data.mocap_pos;
            out[0] = m[3 * target]!;
            out[1] = m[3 * target + 1]!;
            out[2] = HALF + RELEASE_CLEARANCE;
          },
        });
      },
    };
  },
};

export default pickPlace;
