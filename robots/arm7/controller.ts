/**
 * Action modes of arm7, turning a normalised action in [-1, 1] into position-servo targets.
 *
 * - `ee_delta` (4 numbers): Cartesian displacement of the grip site's *target* (x, y, z, each times EE_STEP
 *   metres) and an absolute gripper command (-1 closed, +1 open). The servo targets move by the damped
 *   least-squares solution (`mj_jacSite`, 6-D: the hand is held pointing down) of that displacement, with a
 *   null-space pull toward the ready pose so the redundant seventh joint does not drift. Integrating targets
 *   (rather than re-solving from the measured pose each step) makes a command of n steps move the hand
 *   n * EE_STEP once the servos settle, whatever their lag.
 * - `joint_delta` (8 numbers): each arm joint's target moves by up to JOINT_STEP radians; the last number is
 *   the same absolute gripper command.
 *
 * Targets stay within joint limits, within MAX_LEAD radians of the measured joints (so a blocked arm does not
 * wind up), and in `ee_delta` the grip site's target stays in a workspace box above the table. The servo
 * targets are part of the observation: with them the observation is the full state of the controller.
 */
import type { MjData, MjModel, Mujoco } from '../../src/sim/mujoco.ts';
import { HeapDoubles, requireId } from '../../src/sim/mujoco.ts';
import {
  ARM_ACTUATORS,
  ARM_JOINTS,
  FINGER_ACTUATORS,
  FINGER_JOINTS,
  FINGER_TRAVEL,
  GRIP_SITE,
  HOME_QPOS,
} from './constants.ts';

export type ActionMode = 'ee_delta' | 'joint_delta';
export const ACTION_MODES: readonly ActionMode[] = ['ee_delta', 'joint_delta'];

/** Metres the grip site target moves per control step at |action| = 1. */
export const EE_STEP = 0.02;
/** Radians a joint target moves per control step at |action| = 1. */
export const JOINT_STEP = 0.05;
/** The grip site target stays inside this box (metres, world frame); z keeps fingertips above the table. */
export const WORKSPACE = { min: [0.15, -0.5, 0.012], max: [0.85, 0.5, 0.6] } as const;

const N = ARM_JOINTS.length;
/** Damping of the least-squares solve (metres); larger is smoother near singularities, slower elsewhere. */
const DLS_LAMBDA = 0.02;
/** Regularisation of the null-space projector: tiny, so the posture pull cannot leak into the hand's motion. */
const PROJECTOR_EPS = 1e-8;
/** Weight of orientation error against position error in the 6-D task. */
const ORIENTATION_GAIN = 1.0;
/** Servo targets never lead the measured joint angles by more than this (radians). */
export const MAX_LEAD = 0.25;
/** Gain of the null-space pull toward the ready pose, per control step. */
const POSTURE_GAIN = 0.1;
/** Desired hand orientation: fingers along world y, approach axis pointing down (rows of a rotation matrix). */
const HAND_DOWN = [-1, 0, 0, 0, 1, 0, 0, 0, -1] as const;

/** Number of robot observation entries written by `observe`. */
export const ROBOT_OBS_NAMES: readonly string[] = [
  ...ARM_JOINTS.map((j) => `qpos.${j}`),
  ...ARM_JOINTS.map((j) => `qvel.${j}`),
  ...ARM_JOINTS.map((j) => `servo_target.${j}`),
  'gripper.width',
  'grip.x',
  'grip.y',
  'grip.z',
];

export class ArmController {
  private readonly qposAdr: number[];
  private readonly dofAdr: number[];
  private readonly fingerQposAdr: number[];
  private readonly armAct: number[];
  private readonly fingerAct: number[];
  private readonly lower: Float64Array;
  private readonly upper: Float64Array;
  readonly siteId: number;
  private readonly jacp: HeapDoubles;
  private readonly jacr: HeapDoubles;
  // Scratch for the 6x6 solve and the Jacobian's arm columns; allocated once so stepping allocates nothing.
  private readonly J = new Float64Array(6 * N);
  private readonly A = new Float64Array(36);
  private readonly P = new Float64Array(36);
  private readonly rhs = new Float64Array(6 * (N + 1));
  private readonly err = new Float64Array(6);
  private readonly dq = new Float64Array(N);
  private readonly posture = new Float64Array(N);

  constructor(
    private readonly mj: Mujoco,
    private readonly model: MjModel,
  ) {
    const jointIds = ARM_JOINTS.map((n) => requireId(mj, model, 'joint', n));
    const qposAdr = model.jnt_qposadr;
    const dofAdr = model.jnt_dofadr;
    this.qposAdr = jointIds.map((j) => qposAdr[j]!);
    this.dofAdr = jointIds.map((j) => dofAdr[j]!);
    this.fingerQposAdr = FINGER_JOINTS.map((n) => qposAdr[requireId(mj, model, 'joint', n)]!);
    this.armAct = ARM_ACTUATORS.map((n) => requireId(mj, model, 'actuator', n));
    this.fingerAct = FINGER_ACTUATORS.map((n) => requireId(mj, model, 'actuator', n));
    const range = model.jnt_range;
    this.lower = Float64Array.from(jointIds, (j) => range[2 * j]!);
    this.upper = Float64Array.from(jointIds, (j) => range[2 * j + 1]!);
    this.siteId = requireId(mj, model, 'site', GRIP_SITE);
    this.jacp = new HeapDoubles(mj, 3 * model.nv);
    this.jacr = new HeapDoubles(mj, 3 * model.nv);
  }

  actionDim(mode: ActionMode): number {
    return mode === 'ee_delta' ? 4 : N + 1;
  }

  /** Puts the arm in the ready pose plus `noise` (radians, uniform per joint), fingers open, at rest. */
  resetPose(data: MjData, noise: (i: number) => number): void {
    const qpos = data.qpos;
    const ctrl = data.ctrl;
    for (let i = 0; i < N; i++) {
      const q = Math.min(this.upper[i]!, Math.max(this.lower[i]!, HOME_QPOS[i]! + noise(i)));
      qpos[this.qposAdr[i]!] = q;
      ctrl[this.armAct[i]!] = q;
    }
    for (let i = 0; i < 2; i++) {
      qpos[this.fingerQposAdr[i]!] = FINGER_TRAVEL;
      ctrl[this.fingerAct[i]!] = FINGER_TRAVEL;
    }
  }

  /** Writes servo targets for an action already clipped to [-1, 1] (mj_forward must have run for ee_delta). */
  apply(data: MjData, action: ArrayLike<number>, mode: ActionMode): void {
    const ctrl = data.ctrl;
    if (mode === 'joint_delta') {
      for (let i = 0; i < N; i++) this.dq[i] = action[i]! * JOINT_STEP;
      this.moveTargets(data);
      this.applyGripper(ctrl, action[N]!);
      return;
    }
    this.solveEeDelta(data, action);
    this.moveTargets(data);
    this.applyGripper(ctrl, action[3]!);
  }

  /** ctrl += dq, clamped to joint limits and to MAX_LEAD around the measured joints. */
  private moveTargets(data: MjData): void {
    const ctrl = data.ctrl;
    const qpos = data.qpos;
    for (let i = 0; i < N; i++) {
      const a = this.armAct[i]!;
      const q = qpos[this.qposAdr[i]!]!;
      let target = ctrl[a]! + this.dq[i]!;
      target = Math.min(q + MAX_LEAD, Math.max(q - MAX_LEAD, target));
      ctrl[a] = Math.min(this.upper[i]!, Math.max(this.lower[i]!, target));
    }
  }

  /**
   * Expresses an ee_delta command as the joint_delta action that sets the same servo targets, so scripted
   * experts (which think in Cartesian space) can drive an env in either mode.
   */
  eeToJointAction(data: MjData, ee: ArrayLike<number>, out: Float32Array): void {
    this.solveEeDelta(data, ee);
    for (let i = 0; i < N; i++) out[i] = Math.max(-1, Math.min(1, this.dq[i]! / JOINT_STEP));
    out[N] = ee[3]!;
  }

  private applyGripper(ctrl: Float64Array, command: number): void {
    const opening = ((command + 1) / 2) * FINGER_TRAVEL;
    ctrl[this.fingerAct[0]!] = opening;
    ctrl[this.fingerAct[1]!] = opening;
  }

  /**
   * Fills this.dq with the servo-target displacement that moves the grip site's target by the commanded
   * (workspace-clipped) delta. The target pose is estimated to first order from the measured pose:
   * p_target = p + Jp (ctrl - q), R_target = R + [Jr (ctrl - q)]x R.
   */
  private solveEeDelta(data: MjData, action: ArrayLike<number>): void {
    const { mj, model } = this;
    const site = this.siteId;
    mj.mj_jacSite(model, data, this.jacp.buffer, this.jacr.buffer, site);
    const jp = this.jacp.view();
    const jr = this.jacr.view();
    const nv = model.nv;
    const J = this.J;
    const qpos = data.qpos;
    const ctrl = data.ctrl;
    const lead = this.posture; // reused as scratch for ctrl - q before it holds the posture term
    for (let i = 0; i < N; i++) {
      const d = this.dofAdr[i]!;
      lead[i] = ctrl[this.armAct[i]!]! - qpos[this.qposAdr[i]!]!;
      for (let r = 0; r < 3; r++) {
        J[r * N + i] = jp[r * nv + d]!;
        J[(r + 3) * N + i] = jr[r * nv + d]!;
      }
    }
    const xpos = data.site_xpos;
    const xmat = data.site_xmat;
    const err = this.err;
    let wx = 0;
    let wy = 0;
    let wz = 0;
    for (let i = 0; i < N; i++) {
      wx += J[3 * N + i]! * lead[i]!;
      wy += J[4 * N + i]! * lead[i]!;
      wz += J[5 * N + i]! * lead[i]!;
    }
    for (let k = 0; k < 3; k++) {
      let p = xpos[3 * site + k]!;
      for (let i = 0; i < N; i++) p += J[k * N + i]! * lead[i]!;
      const target = Math.min(WORKSPACE.max[k]!, Math.max(WORKSPACE.min[k]!, p + action[k]! * EE_STEP));
      err[k] = target - p;
    }
    // Orientation error 0.5 * sum_c (r_c x r*_c) over the columns of the target and desired rotations, the
    // target's columns being the measured ones rotated by the small angle w = Jr (ctrl - q).
    let ex = 0;
    let ey = 0;
    let ez = 0;
    const m0 = 9 * site;
    for (let c = 0; c < 3; c++) {
      const mx = xmat[m0 + c]!;
      const my = xmat[m0 + 3 + c]!;
      const mz = xmat[m0 + 6 + c]!;
      const ax = mx + (wy * mz - wz * my);
      const ay = my + (wz * mx - wx * mz);
      const az = mz + (wx * my - wy * mx);
      const bx = HAND_DOWN[c]!;
      const by = HAND_DOWN[3 + c]!;
      const bz = HAND_DOWN[6 + c]!;
      ex += ay * bz - az * by;
      ey += az * bx - ax * bz;
      ez += ax * by - ay * bx;
    }
    err[3] = 0.5 * ORIENTATION_GAIN * ex;
    err[4] = 0.5 * ORIENTATION_GAIN * ey;
    err[5] = 0.5 * ORIENTATION_GAIN * ez;
    for (let i = 0; i < N; i++) {
      for (let r = 3; r < 6; r++) J[r * N + i] = J[r * N + i]! * ORIENTATION_GAIN;
    }

    // Task: damped least squares, A = J J^T + lambda^2 I. Posture: projected onto the null space with the
    // (almost) undamped projector I - J^T (J J^T)^-1 J, so a zero command holds the hand exactly still.
    const A = this.A;
    const P = this.P;
    for (let r = 0; r < 6; r++) {
      for (let c = 0; c <= r; c++) {
        let s = 0;
        for (let i = 0; i < N; i++) s += J[r * N + i]! * J[c * N + i]!;
        A[r * 6 + c] = A[c * 6 + r] = s + (r === c ? DLS_LAMBDA * DLS_LAMBDA : 0);
        P[r * 6 + c] = P[c * 6 + r] = s + (r === c ? PROJECTOR_EPS : 0);
      }
    }
    cholesky6(A);
    cholesky6(P);
    const rhs = this.rhs;
    const cols = N + 1;
    for (let r = 0; r < 6; r++) {
      rhs[r * cols] = err[r]!;
      for (let i = 0; i < N; i++) rhs[r * cols + 1 + i] = J[r * N + i]!;
    }
    choleskySolve6(A, rhs, 1, cols);
    choleskySolve6(P, rhs, cols, cols, 1);
    const posture = this.posture;
    for (let i = 0; i < N; i++) posture[i] = POSTURE_GAIN * (HOME_QPOS[i]! - ctrl[this.armAct[i]!]!);
    const dq = this.dq;
    for (let i = 0; i < N; i++) {
      let task = 0;
      for (let r = 0; r < 6; r++) task += J[r * N + i]! * rhs[r * cols]!;
      // (I - J^T P^-1 J) posture
      let proj = posture[i]!;
      for (let k = 0; k < N; k++) {
        let jtpj = 0;
        for (let r = 0; r < 6; r++) jtpj += J[r * N + i]! * rhs[r * cols + 1 + k]!;
        proj -= jtpj * posture[k]!;
      }
      dq[i] = task + proj;
    }
  }

  /** Robot observation (see ROBOT_OBS_NAMES): joints, velocities, servo targets, gripper width, grip site. */
  observe(data: MjData, out: Float32Array, offset: number): number {
    const qpos = data.qpos;
    const qvel = data.qvel;
    let o = offset;
    for (let i = 0; i < N; i++) out[o++] = qpos[this.qposAdr[i]!]!;
    for (let i = 0; i < N; i++) out[o++] = qvel[this.dofAdr[i]!]!;
    const ctrl = data.ctrl;
    for (let i = 0; i < N; i++) out[o++] = ctrl[this.armAct[i]!]!;
    out[o++] = qpos[this.fingerQposAdr[0]!]! + qpos[this.fingerQposAdr[1]!]!;
    const xpos = data.site_xpos;
    for (let k = 0; k < 3; k++) out[o++] = xpos[3 * this.siteId + k]!;
    return o;
  }

  /** Grip site position (world frame) into out[0..2]. */
  gripPos(data: MjData, out: Float64Array | number[]): void {
    const xpos = data.site_xpos;
    for (let k = 0; k < 3; k++) out[k] = xpos[3 * this.siteId + k]!;
  }

  /** Distance between the fingers' inner faces' travel (0 closed, 2 * FINGER_TRAVEL open). */
  gripperWidth(data: MjData): number {
    const qpos = data.qpos;
    return qpos[this.fingerQposAdr[0]!]! + qpos[this.fingerQposAdr[1]!]!;
  }

  dispose(): void {
    this.jacp.delete();
    this.jacr.delete();
  }
}

/** In-place Cholesky factorisation of a symmetric positive definite 6x6 matrix (lower triangle). */
function cholesky6(A: Float64Array): void {
  for (let j = 0; j < 6; j++) {
    let d = A[j * 6 + j]!;
    for (let k = 0; k < j; k++) d -= A[j * 6 + k]! * A[j * 6 + k]!;
    const l = Math.sqrt(d);
    A[j * 6 + j] = l;
    for (let i = j + 1; i < 6; i++) {
      let s = A[i * 6 + j]!;
      for (let k = 0; k < j; k++) s -= A[i * 6 + k]! * A[j * 6 + k]!;
      A[i * 6 + j] = s / l;
    }
  }
}

/** Solves L L^T X = B in place for columns [from, to) of B, a 6-row, `cols`-column row-major matrix. */
function choleskySolve6(L: Float64Array, B: Float64Array, to: number, cols: number, from = 0): void {
  for (let c = from; c < to; c++) {
    for (let i = 0; i < 6; i++) {
      let s = B[i * cols + c]!;
      for (let k = 0; k < i; k++) s -= L[i * 6 + k]! * B[k * cols + c]!;
      B[i * cols + c] = s / L[i * 6 + i]!;
    }
    for (let i = 5; i >= 0; i--) {
      let s = B[i * cols + c]!;
      for (let k = i + 1; k < 6; k++) s -= L[k * 6 + i]! * B[k * cols + c]!;
      B[i * cols + c] = s / L[i * 6 + i]!;
    }
  }
}
