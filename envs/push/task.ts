/**
 * push: slide a 5 cm red cube across the table onto a green disc. The project's default task.
 *
 * The cube and the disc are placed at random in the reachable table area, at least MIN_SEPARATION apart, so an
 * episode always needs a deliberate push. Success is the cube's centre within SUCCESS_RADIUS of the disc's
 * centre in the table plane while the cube rests on the table (lifting it over the disc does not count).
 *
 * The scripted expert pushes with closed fingers: it hovers above a point behind the cube on the goal-cube line,
 * descends to cube height and drives through towards the goal, steering so the line stays aligned; when the cube
 * slips off the line (it yaws and drifts under a narrow pusher) it lifts and approaches again.
 */
import { fileURLToPath } from 'node:url';
import type { TaskDefinition } from '../../src/env/task.ts';
import { EE_STEP } from '../../robots/arm7/controller.ts';
import { clamp01, dist3, distXY, towards } from '../common/expert-utils.ts';
import { bodyPos, freeBody, placeFree } from '../common/grasp.ts';

/** Cube half-size (metres); must match scene.xml. */
const HALF = 0.025;
const SUCCESS_RADIUS = 0.04;
/** Above this centre height the cube is tipped over or lifted, not resting on the table. */
const ON_TABLE_Z = HALF + 0.008;
/** Cube and goal start at least this far apart, so no episode starts solved or one nudge away. */
const MIN_SEPARATION = 0.12;
/**
 * Reset ranges (metres). Both stay a little short of the arm's reach at table height (about x = 0.66), so the
 * pusher can always get behind the cube, even after it overshoots the goal.
 */
const CUBE_X = [0.36, 0.57] as const;
const CUBE_Y = [-0.18, 0.18] as const;
const GOAL_X = [0.35, 0.58] as const;
const GOAL_Y = [-0.2, 0.2] as const;

// Expert geometry (grip-site heights and offsets, metres).
/** Fingertips clear the cube's top with margin at this grip-site height. */
const Z_HOVER = 0.085;
/** Grip site while pushing: the fingertips sit just below the cube's centre, so pushing does not tip it. */
const Z_PUSH = 0.02;
/** Pre-push point behind the cube: the cube's half-diagonal plus the closed fingers' half-thickness plus margin. */
const APPROACH_BACKOFF = HALF * Math.SQRT2 + 0.012 + 0.012;
/** Off-line distance (pusher to the cube-goal line) beyond which the expert gives up and re-approaches. */
const MAX_LATERAL = 0.022;
/** Within NEAR_GOAL of the goal the push line swings with every millimetre the cube moves: tolerate more. */
const NEAR_GOAL = 0.07;
const MAX_LATERAL_NEAR_GOAL = 0.035;
/** The expert stops pushing this close to the goal: the cube coasts a few millimetres. */
const STOP_RADIUS = 0.012;
/**
 * Proportional gain of free moves. The controller integrates commands into servo targets that the hand reaches a
 * step or so later, so a full-gain controller on the measured position overshoots; this one does not.
 */
const MOVE_GAIN = 0.6;
/** Push speed (metres per control step): 0.25 m/s at most, slowing within PUSH_SPEED / PUSH_SLOWDOWN of the goal. */
const PUSH_SPEED = 0.01;
const MIN_PUSH_SPEED = 0.004;
const PUSH_SLOWDOWN = 0.15;
/** Pusher-to-cube-centre distance when the closed fingers touch the cube's back face squarely. */
const CONTACT_DISTANCE = HALF + 0.012;
/** Largest extra forward motion (metres per step) to close a gap between fingers and cube while pushing. */
const MAX_CATCH_UP = 0.004;
/** Gain on the pusher's sideways offset from the push line, per control step. */
const LATERAL_GAIN = 0.8;

const enum Phase {
  Approach,
  Descend,
  Push,
}

const push: TaskDefinition = {
  name: 'push',
  instruction: 'push the red cube to the green target',
  scenePath: fileURLToPath(new URL('./scene.xml', import.meta.url)),
  episodeSteps: 100,
  create(ctx) {
    const { data, robot, model } = ctx;
    const cubeFree = freeBody(ctx, 'cube', 'cube');
    const cubeBody = cubeFree.body;
    const goalMocap = model.body_mocapid[ctx.id('body', 'goal')]!;
    // Scratch read by every call; refreshed from data before use so nothing is cached across steps.
    const grip = new Float64Array(3);
    const cube = new Float64Array(3);
    const goal = new Float64Array(3);
    const read = (): void => {
      robot.gripPos(data, grip);
      bodyPos(data, cubeFree, cube);
      const m = data.mocap_pos;
      for (let k = 0; k < 3; k++) goal[k] = m[3 * goalMocap + k]!;
    };
    const onTable = (): boolean => cube[2]! < ON_TABLE_Z;
    const success = (): boolean => {
      read();
      return onTable() && distXY(cube, goal) < SUCCESS_RADIUS;
    };
    let startGoalDistance = 1;
    let startGripDistance = 1;

    return {
      obsNames: [
        'cube.x',
        'cube.y',
        'cube.z',
        // A cube looks the same every quarter turn, so yaw is encoded as sin/cos of four times the yaw.
        'cube.yaw4.sin',
        'cube.yaw4.cos',
        'goal.x',
        'goal.y',
        'cube_minus_grip.x',
        'cube_minus_grip.y',
        'cube_minus_grip.z',
      ],
      reset(rng) {
        const cx = rng.uniform(CUBE_X[0], CUBE_X[1]);
        const cy = rng.uniform(CUBE_Y[0], CUBE_Y[1]);
        let gx = 0;
        let gy = 0;
        // Rejection sampling on the seeded stream keeps resets deterministic; the accepted area is most of the box.
        do {
          gx = rng.uniform(GOAL_X[0], GOAL_X[1]);
          gy = rng.uniform(GOAL_Y[0], GOAL_Y[1]);
        } while (Math.hypot(gx - cx, gy - cy) < MIN_SEPARATION);
        const yaw = rng.uniform(-Math.PI / 4, Math.PI / 4);
        placeFree(data, cubeFree, cx, cy, HALF, yaw);
        const m = data.mocap_pos;
        m[3 * goalMocap] = gx;
        m[3 * goalMocap + 1] = gy;
        m[3 * goalMocap + 2] = 0.0005;
        robot.gripPos(data, grip);
        startGoalDistance = Math.hypot(gx - cx, gy - cy);
        startGripDistance = Math.max(Math.hypot(grip[0]! - cx, grip[1]! - cy, grip[2]! - HALF), 1e-6);
      },
      observe(out, offset) {
        read();
        const r = data.xmat;
        const yaw = Math.atan2(r[9 * cubeBody + 3]!, r[9 * cubeBody]!);
        let o = offset;
        out[o++] = cube[0]!;
        out[o++] = cube[1]!;
        out[o++] = cube[2]!;
        out[o++] = Math.sin(4 * yaw);
        out[o++] = Math.cos(4 * yaw);
        out[o++] = goal[0]!;
        out[o++] = goal[1]!;
        for (let k = 0; k < 3; k++) out[o++] = cube[k]! - grip[k]!;
      },
      isSuccess: success,
      denseTerms(out) {
        read();
        out.cost_grip_to_cube = -dist3(grip, cube);
        out.cost_cube_to_goal = -distXY(cube, goal);
        out.cost_cube_off_table = onTable() ? 0 : -1;
      },
      oracleProgress() {
        if (success()) return 1;
        // Stage 1 (a quarter): bring the fingers to the cube. Stage 2: the share of the start distance covered.
        const reach = clamp01(1 - Math.max(0, dist3(grip, cube) - 0.05) / startGripDistance);
        const covered = clamp01(
          (startGoalDistance - distXY(cube, goal)) / Math.max(startGoalDistance - SUCCESS_RADIUS, 1e-6),
        );
        return Math.min(0.99, 0.25 * reach + 0.75 * covered);
      },
      expert() {
        const target = new Float64Array(3);
        const action = new Float32Array(4);
        let phase = Phase.Approach;
        return {
          reset() {
            phase = Phase.Approach;
          },
          act(out) {
            read();
            let ux = goal[0]! - cube[0]!;
            let uy = goal[1]! - cube[1]!;
            const remaining = Math.hypot(ux, uy);
            ux /= Math.max(remaining, 1e-9);
            uy /= Math.max(remaining, 1e-9);
            // Pusher relative to the cube: `along` is negative behind the cube, `lateral` is off the push line.
            const rx = grip[0]! - cube[0]!;
            const ry = grip[1]! - cube[1]!;
            const along = rx * ux + ry * uy;
            const lateral = -rx * uy + ry * ux;
            action[3] = -1;

            if (
              phase === Phase.Push &&
              (Math.abs(lateral) > (remaining < NEAR_GOAL ? MAX_LATERAL_NEAR_GOAL : MAX_LATERAL) ||
                along > -HALF ||
                !onTable())
            ) {
              phase = Phase.Approach;
            }
            if (phase === Phase.Approach) {
              target[0] = cube[0]! - ux * APPROACH_BACKOFF;
              target[1] = cube[1]! - uy * APPROACH_BACKOFF;
              target[2] = Z_HOVER;
              const offXY = distXY(grip, target);
              // Lift before travelling, so the fingers never sweep through the cube on the way round it.
              if (grip[2]! < Z_HOVER - 0.02 && offXY > 0.02) {
                target[0] = grip[0]!;
                target[1] = grip[1]!;
              }
              towards(grip, target, action, MOVE_GAIN);
              if (offXY < 0.008) phase = Phase.Descend;
            }
            if (phase === Phase.Descend) {
              target[0] = cube[0]! - ux * APPROACH_BACKOFF;
              target[1] = cube[1]! - uy * APPROACH_BACKOFF;
              target[2] = Z_PUSH;
              towards(grip, target, action, MOVE_GAIN);
              if (distXY(grip, target) > 0.03) phase = Phase.Approach;
              else if (grip[2]! < Z_PUSH + 0.008) phase = Phase.Push;
            }
            if (phase === Phase.Push) {
              if (remaining < STOP_RADIUS) {
                action[0] = 0;
                action[1] = 0;
                action[2] = 0;
              } else {
                // The controller integrates commands, so the push is a velocity: a forward feed that slows near
                // the goal (the cube coasts less), plus corrections that keep the fingers touching the cube's back
                // and on the push line. A pusher off the line turns the cube further off it, hence the side gain.
                const feed = Math.min(PUSH_SPEED, Math.max(MIN_PUSH_SPEED, remaining * PUSH_SLOWDOWN));
                // Catching up is capped: a pusher that arrives fast kicks the cube past the goal.
                const eAlong = feed + Math.min(MAX_CATCH_UP, MOVE_GAIN * (-CONTACT_DISTANCE - along));
                const eLat = -LATERAL_GAIN * lateral;
                action[0] = (eAlong * ux - eLat * uy) / EE_STEP;
                action[1] = (eAlong * uy + eLat * ux) / EE_STEP;
                action[2] = (MOVE_GAIN * (Z_PUSH - grip[2]!)) / EE_STEP;
                // Scale as a whole rather than clipping per axis, which would bend the push direction.
                const peak = Math.max(1, Math.abs(action[0]), Math.abs(action[1]), Math.abs(action[2]));
                for (let k = 0; k < 3; k++) action[k] = action[k]! / peak;
              }
            }
            out.set(action);
          },
        };
      },
    };
  },
};

export default push;
