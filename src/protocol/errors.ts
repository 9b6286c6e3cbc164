/**
 * Protocol errors: every way a peer's input can be wrong has a stable `code` (listed in docs/protocol.md). The
 * server answers them in band with a `status` message carrying that code, and closes the connection only for
 * the few that make talking on pointless (bad subprotocol, failed authentication).
 */
import { ProgressBridgeError } from '../sim/errors.ts';

export const PROTOCOL_ERROR_CODES = [
  /** The bytes are not MessagePack, or not a map, or came as a text frame. */
  'MALFORMED_MESSAGE',
  /** `type` names no message this protocol version defines. */
  'UNKNOWN_TYPE',
  /** A required field is absent. */
  'MISSING_FIELD',
  /** A field has the wrong JSON/MessagePack type (string for number, map for array, ...). */
  'WRONG_TYPE',
  /** A number outside its range, a non-integer where an integer is needed, an array or string of bad length. */
  'OUT_OF_RANGE',
  /** A value outside an enumeration or a literal, or fields that contradict each other. */
  'INVALID_VALUE',
  /** A tensor whose dtype is unknown, whose shape is invalid, or whose byte length does not match its shape. */
  'BAD_TENSOR',
  /** A message over the connection's size limit for its role (the connection stays open). */
  'PAYLOAD_TOO_LARGE',
  /** A message before `hello`. */
  'HELLO_REQUIRED',
  /** A second `hello` on one connection. */
  'ALREADY_GREETED',
  /** A message the connection's role may not send (a viewer sending `frame`, a client sending `welcome`). */
  'NOT_ALLOWED',
  /** A role that needs a token sent none (closes with 4401). */
  'AUTH_REQUIRED',
  /** A token that does not match (closes with 4401). */
  'AUTH_FAILED',
  /** The client did not offer `progress-bridge.v1` (closes with 4406). */
  'UNSUPPORTED_SUBPROTOCOL',
  /** A frame or panel update that does not fit the current scene (unknown env, wrong body count, no scene). */
  'SCENE_MISMATCH',
  /** A rig's declared spec does not fit the server's policy or reward model (closes with 4400 at hello). */
  'SPEC_MISMATCH',
  /** A rig message for an episode that is not the current one, or one that has ended (send rig_reset). */
  'EPISODE_MISMATCH',
  /** The server could not write a rig step to its episode store: the step is not acknowledged. */
  'STORE_FAILED',
  /** Too many messages waiting on this connection; send the next one after the previous is answered. */
  'OVERLOADED',
  /** Remote learner: the task name is not one this server offers (the message lists them). */
  'UNKNOWN_TASK',
  /** Remote learner: no env batch with that id is open on this connection. */
  'UNKNOWN_ENV',
  /** Remote learner: a call on an env batch whose previous call is unanswered (calls are paced, never queued). */
  'REQUEST_IN_FLIGHT',
  /** Remote learner: a server limit (envs per batch, batches per learner or per server) would be exceeded. */
  'LIMIT_EXCEEDED',
  /** Remote learner: a step before the first reset, or of an ended sub-env with autoreset disabled. */
  'RESET_NEEDED',
  /** Remote learner: actions containing NaN or Inf. */
  'INVALID_ACTION',
  /** Remote learner: the env batch broke on the server (a worker died, the reward model failed to load). */
  'ENV_FAILED',
] as const;

export type ProtocolErrorCode = (typeof PROTOCOL_ERROR_CODES)[number];

/** A peer broke the protocol; `path` names the offending field (`scene.geoms[3].size`) where there is one. */
export class ProtocolError extends ProgressBridgeError {
  declare readonly code: ProtocolErrorCode;
  readonly path: string;
  constructor(code: ProtocolErrorCode, message: string, path = '', options?: { cause?: unknown }) {
    super(code, path ? `${path}: ${message}` : message, options);
    this.path = path;
  }
}

/** WebSocket close codes the bridge uses (4000-4999 is the application range of RFC 6455). */
export const CLOSE = {
  /** Normal shutdown (server stopping). */
  NORMAL: 1000,
  /** Going away: the server is shutting down. */
  GOING_AWAY: 1001,
  /** The peer did not send `hello` in time, or sent a malformed one. */
  BAD_HELLO: 4400,
  /** Missing or wrong token. */
  UNAUTHORIZED: 4401,
  /** Subprotocol mismatch: the reason names the one the server speaks. */
  UNSUPPORTED_SUBPROTOCOL: 4406,
  /** Heartbeat timeout (the server sends this reason before terminating where the socket still writes). */
  HEARTBEAT_TIMEOUT: 4408,
} as const;
