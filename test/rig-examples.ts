/** One valid example of every rig message, for the protocol round-trip tests (test/protocol.test.ts). */
import { toTensor, type Message, type RIG_MESSAGES } from '../src/protocol/index.ts';

type RigMessageType = keyof typeof RIG_MESSAGES;

const ended = {
  episode: 4,
  steps: 57,
  terminated: true,
  truncated: false,
  success: true,
  reason: 'success_sensor',
  return: 1,
  shapedReturn: 1.42,
};

export const RIG_EXAMPLES: { [T in RigMessageType]: Extract<Message, { type: T }> } = {
  rig_obs: {
    type: 'rig_obs',
    seq: 17,
    episode: 4,
    time: 1732.25,
    frames: { front: Uint8Array.from([255, 216, 255, 224]), wrist: Uint8Array.from([1, 2, 3]) },
    proprio: toTensor(Float32Array.from([0.1, -0.2, 0.3])),
    success: false,
    intervention: toTensor(Float32Array.from([0.5, 0, -0.5, 1])),
    held: true,
    privileged: 0.4,
  },
  rig_reset: { type: 'rig_reset', reason: 'time_limit' },
  rig_mark: { type: 'rig_mark', outcome: 'failure', episode: 4 },
  rig_ready: {
    type: 'rig_ready',
    episode: 4,
    policy: 'onnx:policies/push.onnx',
    reward: 'default@1',
    rewardCameras: ['front', 'wrist'],
    gamma: 0.99,
    deadlineMs: 33.3,
    store: 'rig-episodes/arm-1',
  },
  rig_action: {
    type: 'rig_action',
    seq: 17,
    episode: 4,
    step: 12,
    action: toTensor(Float32Array.from([0.25, -1, 0, 1])),
    late: false,
    decideMs: 1.5,
    display: { step: 11, phi: 0.37, reward: 0, shaped: 0.02 },
    ended,
  },
  rig_episode: { type: 'rig_episode', episode: 5, running: true, ended },
};
