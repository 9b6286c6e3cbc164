/**
 * Shared pieces of the object tasks (push, pick-place, stack): reading and placing free-jointed objects, a privileged
 * "is it held" test, and a closed-loop scripted pick-and-place expert.
 *
 * arm7's hand always points straight down with the fingers closing along world y, so a grasp is: centre the
 * grip site over the object, descend until the fingertips are a few millimetres above the table, close.
 */
import type { ArmController } from '../../robots/arm7/controller.ts';
import type { MjData } from '../../src/sim/mujoco.ts';
import type { Expert, TaskContext } from '../../src/env/task.ts';
import { towards } from './expert-utils.ts';

/** Addresses of one body with a free joint. */
export interface FreeBody {
  readonly body: number;
  readonly qposAdr: number;
  readonly dofAdr: number;
}

export function freeBody(ctx: TaskContext, body: string, joint: string): FreeBody {
  const j = ctx.id('joint', joint);
  return {
    body: ctx.id('body', body),
    qposAdr: ctx.model.jnt_qposadr[j]!,
    dofAdr: ctx.model.jnt_dofadr[j]!,
  };
}

/** Puts a free body at (x, y, z) with yaw `yaw` about world z, at rest. */
export function placeFree(data: MjData, fb: FreeBody, x: number, y: number, z: number, yaw: number): void {
  const q = data.qpos;
  const a = fb.qposAdr;
  q[a] = x;
  q[a + 1] = y;
  q[a + 2] = z;
  q[a + 3] = Math.cos(yaw / 2);
  q[a + 4] = 0;
  q[a + 5] = 0;
  q[a + 6] = Math.sin(yaw / 2);
  const v = data.qvel;
  for (let k = 0; k < 6; k++) v[fb.dofAdr + k] = 0;
}

/** Body position (world frame, as of the last kinematics pass) into out[0..2]. */
export function bodyPos(data: MjData, fb: FreeBody, out: Float64Array | number[]): void {
  const x = data.xpos;
  for (let k = 0; k < 3; k++) out[k] = x[3 * fb.body + k]!;
}

/** Linear speed of a free body (m/s). */
export function linearSpeed(data: MjData, fb: FreeBody): number {
  const v = data.qvel;
  const d = fb.dofAdr;
  return Math.hypot(v[d]!, v[d + 1]!, v[d + 2]!);
}

/**
 * How upright a cube is: the largest |cosine| between world z and any of the body's axes. A cube is "upright"
 * when any face is down, so this is 1 for every resting pose and ~0.58 balanced on a corner.
 */
export function cubeUpright(data: MjData, fb: FreeBody): number {
  const m = data.xmat;
  const r = 9 * fb.body + 6;
  return Math.max(Math.abs(m[r]!), Math.abs(m[r + 1]!), Math.abs(m[r + 2]!));
}

/** Writes the first two columns of a body's rotation matrix (a continuous orientation code) at out[offset..+5]. */
export function rot6(data: MjData, fb: FreeBody, out: Float32Array, offset: number): void {
  const m = data.xmat;
  const b = 9 * fb.body;
  for (let r = 0; r < 3; r++) {
    out[offset + r] = m[b + 3 * r]!;
    out[offset + 3 + r] = m[b + 3 * r + 1]!;
  }
}

/**
 * Width of a cube of edge `size` along world y, the axis the fingers close on. The hand cannot yaw, so a cube
 * turned on the table is pinched across its vertical edges; that is a firm grasp too, just a wider one.
 */
export function cubeSpanY(data: MjData, fb: FreeBody, size: number): number {
  const m = data.xmat;
  const r = 9 * fb.body + 3;
  return size * (Math.abs(m[r]!) + Math.abs(m[r + 1]!) + Math.abs(m[r + 2]!));
}

/**
 * Privileged grasp test for an object `span` wide along y centred at `obj`: its centre sits between the finger
 * pads (24 mm wide in x, reaching 4 mm below the grip site) and the fingers are closed on it, neither open nor
 * closed on air. Geometric rather than contact-based so it allocates nothing.
 */
export function isHeld(
  data: MjData,
  robot: ArmController,
  grip: ArrayLike<number>,
  obj: ArrayLike<number>,
  span: number,
): boolean {
  const width = robot.gripperWidth(data);
  if (width > span + 0.004 || width < span - 0.012) return false;
  return (
    Math.abs(grip[0]! - obj[0]!) < 0.02 &&
    Math.abs(grip[1]! - obj[1]!) < 0.012 &&
    Math.abs(grip[2]! - obj[2]!) < 0.03
  );
}

/** What the pick-and-place expert needs from a task, read fresh on every call. */
export interface PickPlaceSpec {
  /** Current centre of the object to carry. */
  object(out: Float64Array): void;
  /** Where the object's centre should be released (world frame). */
  goal(out: Float64Array): void;
  /** Current width of the object along y (see cubeSpanY). */
  span(): number;
  /** Grip-site height while travelling with or without the object; clears every other object. */
  readonly carryZ: number;
}

const APPROACH = 0;
const DESCEND = 1;
const CLOSE = 2;
const LIFT = 3;
const CARRY = 4;
const LOWER = 5;
const RELEASE = 6;
const RETREAT = 7;

/**
 * Control steps the fingers get to close before the grasp is judged: ~2 cm of travel takes two or three, the
 * rest lets the squeeze settle so the width test is not fooled by a finger still moving.
 */
const CLOSE_STEPS = 6;
/**
 * Grasp height below the object's centre. The pads then cover most of a cube's side while the fingertips (4 mm
 * below the grip site) stay ~1.5 cm above the table for a 4.5 cm cube, so they never drag on it.
 */
const GRASP_BELOW_CENTRE = 0.004;
/** Carrying accelerations shake a held cube; a gentler speed cap than free motion keeps the grasp. */
const CARRY_LIMIT = 0.8;

/**
 * Open, hover over the object, descend, close, lift, carry over the goal, lower, open, retreat. Every call
 * re-reads the state and each phase checks the grasp, so a cube that slips out sends the expert back to
 * re-grasp it wherever it landed.
 */
export class PickPlaceExpert implements Expert {
  private phase = APPROACH;
  private count = 0;
  private readonly grip = new Float64Array(3);
  private readonly obj = new Float64Array(3);
  private readonly goal = new Float64Array(3);
  private readonly target = new Float64Array(3);
  private readonly action = new Float32Array(4);

  constructor(
    private readonly data: MjData,
    private readonly robot: ArmController,
    private readonly spec: PickPlaceSpec,
  ) {}

  reset(): void {
    this.phase = APPROACH;
    this.count = 0;
  }

  act(out: Float32Array): void {
    const { data, robot, spec, grip, obj, goal, target, action } = this;
    robot.gripPos(data, grip);
    spec.object(obj);
    spec.goal(goal);
    const span = spec.span();
    const held = isHeld(data, robot, grip, obj, span);
    const xyErr = Math.hypot(grip[0]! - obj[0]!, grip[1]! - obj[1]!);
    // Floor just above the controller's workspace limit (0.012), which would otherwise stop the descent short.
    const graspZ = Math.max(0.014, obj[2]! - GRASP_BELOW_CENTRE);
    let gripper = 1;
    let limit = 1;
    switch (this.phase) {
      case APPROACH: {
        // Rise before any long sideways move so the open fingers do not sweep the object away.
        target[0] = obj[0]!;
        target[1] = obj[1]!;
        target[2] = spec.carryZ;
        if (xyErr > 0.015 && grip[2]! < spec.carryZ - 0.03) {
          target[0] = grip[0]!;
          target[1] = grip[1]!;
        }
        if (xyErr < 0.008) this.go(DESCEND);
        break;
      }
      case DESCEND:
        target[0] = obj[0]!;
        target[1] = obj[1]!;
        target[2] = graspZ;
        if (xyErr > 0.02) this.go(APPROACH);
        else if (Math.abs(grip[2]! - graspZ) < 0.005) this.go(CLOSE);
        break;
      case CLOSE:
        gripper = -1;
        target[0] = obj[0]!;
        target[1] = obj[1]!;
        target[2] = graspZ;
        if (++this.count >= CLOSE_STEPS) this.go(held ? LIFT : APPROACH);
        break;
      case LIFT:
        gripper = -1;
        target[0] = grip[0]!;
        target[1] = grip[1]!;
        target[2] = spec.carryZ;
        if (!held) this.go(APPROACH);
        else if (grip[2]! > spec.carryZ - 0.02) this.go(CARRY);
        break;
      case CARRY:
      case LOWER: {
        gripper = -1;
        limit = CARRY_LIMIT;
        // Steer the object, not the hand: the cube may sit off-centre between the pads.
        target[0] = goal[0]! + grip[0]! - obj[0]!;
        target[1] = goal[1]! + grip[1]! - obj[1]!;
        const goalXY = Math.hypot(goal[0]! - obj[0]!, goal[1]! - obj[1]!);
        if (this.phase === CARRY) {
          target[2] = spec.carryZ;
          if (goalXY < 0.008) this.go(LOWER);
        } else {
          target[2] = goal[2]! + grip[2]! - obj[2]!;
          if (goalXY > 0.02) this.go(CARRY);
          else if (Math.abs(obj[2]! - goal[2]!) < 0.004) this.go(RELEASE);
        }
        if (!held) this.go(APPROACH);
        break;
      }
      case RELEASE:
        target[0] = grip[0]!;
        target[1] = grip[1]!;
        target[2] = grip[2]!;
        if (robot.gripperWidth(data) > span + 0.015) this.go(RETREAT);
        break;
      default: {
        // RETREAT: back off upward; if the object did not stay on the goal, start over.
        target[0] = grip[0]!;
        target[1] = grip[1]!;
        target[2] = spec.carryZ;
        const goalXY = Math.hypot(goal[0]! - obj[0]!, goal[1]! - obj[1]!);
        if (goalXY > 0.025 && grip[2]! > obj[2]! + span) this.go(APPROACH);
        break;
      }
    }
    towards(grip, target, action, 1, limit);
    action[3] = gripper;
    out.set(action);
  }

  private go(phase: number): void {
    this.phase = phase;
    this.count = 0;
  }
}
