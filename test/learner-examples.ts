/** One valid example of every remote-learner message, for the protocol round-trip tests (test/protocol.test.ts). */
import { toTensor, type Message, type LearnerMessageType } from '../src/protocol/index.ts';

const flags = (...v: number[]): Uint8Array => Uint8Array.from(v);
const f64 = (...v: number[]): Float64Array => Float64Array.from(v);

const info = {
  is_success: toTensor(flags(0, 1)),
  episode_step: toTensor(Int32Array.from([3, 0])),
  phi: toTensor(f64(0.25, 0)),
  sparse_reward: toTensor(f64(0, 1)),
  dense_reward: toTensor(f64(-0.1, 0.2)),
  progress: toTensor(f64(0.25, NaN)),
  final_obs: toTensor(Float32Array.from([0, 0, 1.5, -2]), [2, 2]),
  _final_obs: toTensor(flags(0, 1)),
  final_info: {
    is_success: toTensor(flags(0, 1)),
    episode_step: toTensor(Int32Array.from([0, 7])),
    phi: toTensor(f64(NaN, 0)),
  },
  _final_info: toTensor(flags(0, 1)),
};

export const LEARNER_EXAMPLES: { [T in LearnerMessageType]: Extract<Message, { type: T }> } = {
  vec_open: {
    type: 'vec_open',
    req: 1,
    task: 'push',
    numEnvs: 2,
    autoreset: 'same-step',
    reward: 'oracle',
    gamma: 0.99,
    shapingScale: 1,
    queryStride: 2,
    bootstrapTruncated: true,
    actionMode: 'ee_delta',
    episodeSteps: 50,
  },
  vec_opened: {
    type: 'vec_opened',
    req: 1,
    env: 3,
    task: 'push',
    instruction: 'push the cube to the target',
    numEnvs: 2,
    obsDim: 2,
    actDim: 4,
    obsNames: ['a', 'b'],
    actionLow: -1,
    actionHigh: 1,
    episodeSteps: 50,
    autoreset: 'same-step',
    reward: 'oracle',
    shaping: 'potential',
    rewardModel: 'oracle@1',
    gamma: 0.99,
    queryStride: 2,
  },
  vec_reset: { type: 'vec_reset', req: 2, env: 3, seeds: [5, 9], resetMask: [true, false] },
  vec_reset_result: {
    type: 'vec_reset_result',
    req: 2,
    env: 3,
    obs: toTensor(Float32Array.from([1, 2, 3, 4]), [2, 2]),
    info: { is_success: info.is_success, episode_step: info.episode_step, phi: info.phi },
    timing: { simMs: 1.5, rewardMs: 0 },
  },
  vec_step: {
    type: 'vec_step',
    req: 3,
    env: 3,
    actions: toTensor(Float32Array.from([0.1, -0.2, 0.3, 1, 0, 0, 0, -1]), [2, 4]),
  },
  vec_step_result: {
    type: 'vec_step_result',
    req: 3,
    env: 3,
    obs: toTensor(Float32Array.from([1, 2, 3, 4]), [2, 2]),
    rewards: toTensor(f64(0.0125, 1)),
    terminated: toTensor(flags(0, 1)),
    truncated: toTensor(flags(0, 0)),
    info,
    timing: { simMs: 0.8, rewardMs: 0.3 },
  },
  vec_close: { type: 'vec_close', req: 4, env: 3 },
  vec_closed: { type: 'vec_closed', req: 4, env: 3, reason: 'closed by the learner' },
};
