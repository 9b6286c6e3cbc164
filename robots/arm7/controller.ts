/**
 * Action modes of arm7, turning a normalised action in [-1, 1] into position-servo targets.
 *
 * - `ee_delta` (4 numbers): Cartesian displacement of the grip site (x, y, z, each times EE_STEP metres) and an
 *   absolute gripper command (-1 closed, +1 open). Joint targets come from damped least squares on the site's
 *   6-D Jacobian (`mj_jacSite`), with the hand held pointing down and a null-space pull toward the ready pose,
 *   so the redundant seventh joint does not drift.
 * - `joint_delta` (8 numbers): each arm joint's target moves by up to JOINT_STEP radians from its previous
 *   target; the last number is the same absolute gripper command.
 *
 * Targets are clipped to joint limits (and, in `ee_delta`, the grip site to a workspace box above the table).
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
const DLS_LAMBDA = 0.05;
/** Weight of orientation error against position error in the 6-D task. */
const ORIENTATION_GAIN = 1.0;
/** Gain of the null-space pull toward the ready pose, per control step. */
const POSTURE_GAIN = 0.1;
/** Desired hand orientation: fingers along world y, approach axis pointing down (rows of a rotation matrix). */
const HAND_DOWN = [-1, 0, 0, 0, 1, 0, 0, 0, -1] as const;

/** Number of robot observation entries written by `observe`. */
export const ROBOT_OBS_NAMES: readonly string[] = [
  ...ARM_JOINTS.map((j) => `qpos.${j}`),
  ...ARM_JOINTS.map((j) => `qvel.${j}`),
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
      for (let i = 0; i < N; i++) {
        const a = this.armAct[i]!;
        ctrl[a] = Math.min(this.upper[i]!, Math.max(this.lower[i]!, ctrl[a]! + action[i]! * JOINT_STEP));
      }
      this.applyGripper(ctrl, action[N]!);
      return;
    }
    this.solveEeDelta(data, action);
    const qpos = data.qpos;
    for (let i = 0; i < N; i++) {
      const q = qpos[this.qposAdr[i]!]! + this.dq[i]!;
      ctrl[this.armAct[i]!] = Math.min(this.upper[i]!, Math.max(this.lower[i]!, q));
    }
    this.applyGripper(ctrl, action[3]!);
  }

  /**
   * Expresses an ee_delta command as the joint_delta action that sets the same servo targets, so scripted
   * experts (which think in Cartesian space) can drive an env in either mode.
   */
  eeToJointAction(data: MjData, ee: ArrayLike<number>, out: Float32Array): void {
    this.solveEeDelta(data, ee);
    const qpos = data.qpos;
    const ctrl = data.ctrl;
    for (let i = 0; i < N; i++) {
      const target = qpos[this.qposAdr[i]!]! + this.dq[i]!;
      out[i] = Math.max(-1, Math.min(1, (target - ctrl[this.armAct[i]!]!) / JOINT_STEP));
    }
    out[N] = ee[3]!;
  }

  private applyGripper(ctrl: Float64Array, command: number): void {
    const opening = ((command + 1) / 2) * FINGER_TRAVEL;
    ctrl[this.fingerAct[0]!] = opening;
    ctrl[this.fingerAct[1]!] = opening;
  }

  /** Fills this.dq with the joint displacement that moves the grip site by the commanded (clipped) delta. */
  private solveEeDelta(data: MjData, action: ArrayLike<number>): void {
    const { mj, model } = this;
    const site = this.siteId;
    const xpos = data.site_xpos;
    const xmat = data.site_xmat;
    const err = this.err;
    for (let k = 0; k < 3; k++) {
      const p = xpos[3 * site + k]!;
      const target = Math.min(WORKSPACE.max[k]!, Math.max(WORKSPACE.min[k]!, p + action[k]! * EE_STEP));
      err[k] = target - p;
    }
    // Orientation error 0.5 * sum_i (r_i x r*_i) over the columns of current and desired rotations.
    let ex = 0;
    let ey = 0;
    let ez = 0;
    const m0 = 9 * site;
    for (let c = 0; c < 3; c++) {
      const ax = xmat[m0 + c]!;
      const ay = xmat[m0 + 3 + c]!;
      const az = xmat[m0 + 6 + c]!;
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

    mj.mj_jacSite(model, data, this.jacp.buffer, this.jacr.buffer, site);
    const jp = this.jacp.view();
    const jr = this.jacr.view();
    const nv = model.nv;
    const J = this.J;
    for (let i = 0; i < N; i++) {
      const d = this.dofAdr[i]!;
      for (let r = 0; r < 3; r++) {
        J[r * N + i] = jp[r * nv + d]!;
        J[(r + 3) * N + i] = jr[r * nv + d]! * ORIENTATION_GAIN;
      }
    }
    // A = J J^T + lambda^2 I, factorised once; solve for the task (column 0) and for J itself (columns 1..N)
    // to build the null-space projector I - J^T A^-1 J.
    const A = this.A;
    for (let r = 0; r < 6; r++) {
      for (let c = 0; c <= r; c++) {
        let s = 0;
        for (let i = 0; i < N; i++) s += J[r * N + i]! * J[c * N + i]!;
        if (r === c) s += DLS_LAMBDA * DLS_LAMBDA;
        A[r * 6 + c] = s;
        A[c * 6 + r] = s;
      }
    }
    cholesky6(A);
    const rhs = this.rhs;
    const cols = N + 1;
    for (let r = 0; r < 6; r++) {
      rhs[r * cols] = err[r]!;
      for (let i = 0; i < N; i++) rhs[r * cols + 1 + i] = J[r * N + i]!;
    }
    choleskySolve6(A, rhs, cols);
    const qpos = data.qpos;
    const posture = this.posture;
    for (let i = 0; i < N; i++) posture[i] = POSTURE_GAIN * (HOME_QPOS[i]! - qpos[this.qposAdr[i]!]!);
    const dq = this.dq;
    for (let i = 0; i < N; i++) {
      let task = 0;
      for (let r = 0; r < 6; r++) task += J[r * N + i]! * rhs[r * cols]!;
      // (I - J^T A^-1 J) posture
      let proj = posture[i]!;
      for (let k = 0; k < N; k++) {
        let jtaj = 0;
        for (let r = 0; r < 6; r++) jtaj += J[r * N + i]! * rhs[r * cols + 1 + k]!;
        proj -= jtaj * posture[k]!;
      }
      dq[i] = task + proj;
    }
  }

  /** Robot observation (see ROBOT_OBS_NAMES): joint positions, velocities, gripper width, grip site position. */
  observe(data: MjData, out: Float32Array, offset: number): number {
    const qpos = data.qpos;
    const qvel = data.qvel;
    let o = offset;
    for (let i = 0; i < N; i++) out[o++] = qpos[this.qposAdr[i]!]!;
    for (let i = 0; i < N; i++) out[o++] = qvel[this.dofAdr[i]!]!;
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

/** Solves L L^T X = B in place for B of 6 rows and `cols` columns (row-major). */
function choleskySolve6(L: Float64Array, B: Float64Array, cols: number): void {
  for (let c = 0; c < cols; c++) {
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
