/**
 * drawer-open: pull a cabinet drawer open by its bar handle. Articulated and contact-rich: the drawer moves only
 * along its slide joint, against damping and dry friction, and only while something pulls on the handle.
 *
 * Each episode places the cabinet (a mocap body) with its front near x = 0.56, shifted sideways and turned a
 * little about the vertical, and starts the drawer closed or up to 2 cm open. Success is an opening of at least
 * SUCCESS_OPENING along the joint.
 *
 * The hand cannot turn about the vertical and its fingers close along world y, i.e. along the bar, so the
 * scripted expert does not pinch the bar: it closes the fingers into a compact hook, lowers them into the gap
 * between the bar and the drawer front, and pulls along the drawer's axis. A policy may hook or push on anything
 * it likes; only the opening counts.
 */
import { fileURLToPath } from 'node:url';
import type { TaskDefinition } from '../../src/env/task.ts';
import { EE_STEP } from '../../robots/arm7/controller.ts';
import { clamp01, dist3, distXY, towards } from '../common/expert-utils.ts';

const SUCCESS_OPENING = 0.15;
/** Reset ranges: cabinet front-centre position (metres), yaw (radians), initial opening (metres). */
const CABINET_X = [0.53, 0.59] as const;
const CABINET_Y = [-0.1, 0.1] as const;
const CABINET_YAW = [-0.2, 0.2] as const;
const START_OPENING = [0, 0.02] as const;

// Expert geometry (metres). The bar's centre is the `handle` site; the gap behind it is 4.2 cm deep.
/** Finger centre this far behind the bar's centre: bar radius + half the closed fingers' thickness + clearance. */
const HOOK_OFFSET = 0.026;
/** Grip-site height above the bar for the approach: fingertips and hand clear the bar and the cabinet's top. */
const HOVER_ABOVE = 0.1;
/** Grip-site height below the bar while pulling: the fingertips reach well under it, so it cannot slip below. */
const HOOK_BELOW = 0.022;
/** How far ahead of the hook point the pull aims (per step), pressing the fingers against the bar. */
const PULL_FEED = 0.7 * EE_STEP;
/** The expert stops pulling past this opening; beyond success, nothing is gained by slamming the end stop. */
const STOP_OPENING = 0.18;

const enum Phase {
  Approach,
  Descend,
  Pull,
}

const drawerOpen: TaskDefinition = {
  name: 'drawer-open',
  instruction: 'pull the drawer open by its handle',
  scenePath: fileURLToPath(new URL('./scene.xml', import.meta.url)),
  episodeSteps: 100,
  create(ctx) {
    const { mj, model, data, robot } = ctx;
    const cabinet = model.body_mocapid[ctx.id('body', 'cabinet')]!;
    const drawerQpos = model.jnt_qposadr[ctx.id('joint', 'drawer')]!;
    const handleSite = ctx.id('site', 'handle');
    // Scratch refreshed from data before every use, so nothing stale is carried across steps.
    const grip = new Float64Array(3);
    const handle = new Float64Array(3);
    /** Opening direction in the world (unit, horizontal): the drawer joint's axis. */
    const pull = new Float64Array(2);
    let yaw = 0;
    const read = (): void => {
      robot.gripPos(data, grip);
      const s = data.site_xpos;
      for (let k = 0; k < 3; k++) handle[k] = s[3 * handleSite + k]!;
    };
    const opening = (): number => data.qpos[drawerQpos]!;
    let startOpening = 0;
    let startGripDistance = 1;

    return {
      obsNames: [
        'handle.x',
        'handle.y',
        'handle.z',
        'drawer.opening',
        'cabinet.yaw.sin',
        'cabinet.yaw.cos',
        'handle_minus_grip.x',
        'handle_minus_grip.y',
        'handle_minus_grip.z',
      ],
      reset(rng) {
        const x = rng.uniform(CABINET_X[0], CABINET_X[1]);
        const y = rng.uniform(CABINET_Y[0], CABINET_Y[1]);
        yaw = rng.uniform(CABINET_YAW[0], CABINET_YAW[1]);
        const m = data.mocap_pos;
        m[3 * cabinet] = x;
        m[3 * cabinet + 1] = y;
        m[3 * cabinet + 2] = 0;
        const q = data.mocap_quat;
        q[4 * cabinet] = Math.cos(yaw / 2);
        q[4 * cabinet + 1] = 0;
        q[4 * cabinet + 2] = 0;
        q[4 * cabinet + 3] = Math.sin(yaw / 2);
        pull[0] = -Math.cos(yaw);
        pull[1] = -Math.sin(yaw);
        startOpening = rng.uniform(START_OPENING[0], START_OPENING[1]);
        data.qpos[drawerQpos] = startOpening;
        // The env runs mj_forward after this; the start distance needs the handle's new place now.
        mj.mj_kinematics(model, data);
        read();
        startGripDistance = Math.max(dist3(grip, handle), 1e-6);
      },
      observe(out, offset) {
        read();
        let o = offset;
        for (let k = 0; k < 3; k++) out[o++] = handle[k]!;
        out[o++] = opening();
        out[o++] = Math.sin(yaw);
        out[o++] = Math.cos(yaw);
        for (let k = 0; k < 3; k++) out[o++] = handle[k]! - grip[k]!;
      },
      isSuccess: () => opening() >= SUCCESS_OPENING,
      denseTerms(out) {
        read();
        out.cost_grip_to_handle = -dist3(grip, handle);
        out.cost_opening_left = -Math.max(0, SUCCESS_OPENING - opening());
        out.reward_opening = Math.min(opening(), SUCCESS_OPENING);
      },
      oracleProgress() {
        const open = opening();
        if (open >= SUCCESS_OPENING) return 1;
        read();
        // Stage 1 (30%): bring the fingers to the handle. Stage 2: the share of the needed opening achieved.
        const reach = clamp01(1 - Math.max(0, dist3(grip, handle) - 0.03) / startGripDistance);
        const opened = clamp01((open - startOpening) / Math.max(SUCCESS_OPENING - startOpening, 1e-6));
        return Math.min(0.99, 0.3 * reach + 0.7 * opened);
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
            const px = pull[0]!;
            const py = pull[1]!;
            // Hook point: in the gap between the bar and the drawer front, i.e. behind the bar against the pull.
            const hx = handle[0]! - px * HOOK_OFFSET;
            const hy = handle[1]! - py * HOOK_OFFSET;
            // Finger centre relative to the bar along the pull: negative means behind the bar, where it hooks.
            const along = (grip[0]! - handle[0]!) * px + (grip[1]! - handle[1]!) * py;
            action[3] = -1;

            if (phase === Phase.Pull && (along > -0.01 || grip[2]! > handle[2]! + 0.005))
              phase = Phase.Approach;
            if (phase === Phase.Approach) {
              target[0] = hx;
              target[1] = hy;
              target[2] = handle[2]! + HOVER_ABOVE;
              const offXY = Math.hypot(grip[0]! - hx, grip[1]! - hy);
              // Lift before travelling sideways, so the fingers never drag over the bar or the drawer's edge.
              if (grip[2]! < handle[2]! + HOVER_ABOVE - 0.04 && offXY > 0.015) {
                target[0] = grip[0]!;
                target[1] = grip[1]!;
              }
              towards(grip, target, action);
              if (offXY < 0.006) phase = Phase.Descend;
            }
            if (phase === Phase.Descend) {
              target[0] = hx;
              target[1] = hy;
              target[2] = handle[2]! - HOOK_BELOW;
              towards(grip, target, action);
              if (distXY(grip, target) > 0.02) phase = Phase.Approach;
              else if (grip[2]! < handle[2]! - HOOK_BELOW + 0.008) phase = Phase.Pull;
            }
            if (phase === Phase.Pull) {
              if (opening() >= STOP_OPENING) {
                action[0] = 0;
                action[1] = 0;
                action[2] = 0;
              } else {
                target[0] = hx + px * PULL_FEED;
                target[1] = hy + py * PULL_FEED;
                target[2] = handle[2]! - HOOK_BELOW;
                towards(grip, target, action);
              }
            }
            out.set(action);
          },
        };
      },
    };
  },
};

export default drawerOpen;
