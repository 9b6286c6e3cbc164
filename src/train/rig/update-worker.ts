/**
 * A PPO update off the main thread. Rigs keep sending observations while the learner updates; on the main
 * thread a multi-second update would make every rig's actions late. The main thread sends the learner's state
 * and the rollout, this thread rebuilds the learner, updates it, and sends the new state back.
 */
import { parentPort } from 'node:worker_threads';
import { PpoLearner } from '../../learn/ppo.ts';
import type { UpdateReply, UpdateRequest } from './update-client.ts';

const port = parentPort!;

port.on('message', (req: UpdateRequest) => {
  let reply: UpdateReply;
  try {
    const learner = new PpoLearner({
      obsDim: req.state.obsDim,
      actDim: req.state.actDim,
      numEnvs: req.state.numEnvs,
      seed: 0,
      config: req.state.config,
      deferredRewards: true,
    });
    learner.loadState(req.state);
    learner.loadRollout(req.rows);
    learner.setRolloutRewards(req.rewards);
    const stats = learner.update(new Float32Array(req.state.numEnvs * req.state.obsDim), req.progress);
    reply = { id: req.id, ok: true, state: learner.state(), stats };
  } catch (err) {
    const e = err as Error & { code?: string };
    reply = { id: req.id, ok: false, code: e.code ?? 'UPDATE_FAILED', message: e.message ?? String(err) };
  }
  port.postMessage(reply);
});
