/**
 * Error classes of the simulation runtime. Each has a stable `code` (listed in docs/errors.md) so callers,
 * CLIs and remote peers can branch on the kind of failure without parsing messages.
 */
export class ProgressBridgeError extends Error {
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/** Where in an MJCF file MuJoCo's compiler complained, as far as its message says. */
export interface MjcfLocation {
  file?: string;
  element?: string;
  line?: number;
}

/** MuJoCo rejected a model (bad XML, bad attribute, missing asset). Keeps MuJoCo's own message. */
export class ModelLoadError extends ProgressBridgeError {
  readonly mujocoMessage: string;
  readonly location: MjcfLocation;
  constructor(source: string, mujocoMessage: string, location: MjcfLocation, options?: { cause?: unknown }) {
    const where = [
      location.file ? `file ${location.file}` : undefined,
      location.element ? `element ${location.element}` : undefined,
      location.line !== undefined ? `line ${location.line}` : undefined,
    ]
      .filter(Boolean)
      .join(', ');
    super('MODEL_LOAD', `cannot load MJCF ${source}: ${mujocoMessage}${where ? ` (${where})` : ''}`, options);
    this.mujocoMessage = mujocoMessage;
    this.location = location;
  }
}

/** A file the caller named (model, task module, asset) does not exist or cannot be read. */
export class FileNotFoundError extends ProgressBridgeError {
  readonly path: string;
  constructor(path: string, what: string) {
    super('FILE_NOT_FOUND', `${what} not found: ${path}`);
    this.path = path;
  }
}

/** `step()` called before the first `reset()` or after an episode ended. */
export class ResetNeeded extends ProgressBridgeError {
  constructor(message: string) {
    super('RESET_NEEDED', message);
  }
}

/** An action of the wrong shape, or containing NaN or Inf. */
export class InvalidAction extends ProgressBridgeError {
  readonly index: number | undefined;
  constructor(message: string, index?: number) {
    super('INVALID_ACTION', message);
    this.index = index;
  }
}

/** A bad argument to an env, vector env or CLI (seed, option, count), naming the field and the limit. */
export class InvalidArgument extends ProgressBridgeError {
  readonly field: string;
  constructor(field: string, message: string) {
    super('INVALID_ARGUMENT', `${field}: ${message}`);
    this.field = field;
  }
}

/** A task name the registry does not know; the message lists the valid names. */
export class UnknownTask extends ProgressBridgeError {
  readonly validNames: readonly string[];
  constructor(name: string, validNames: readonly string[]) {
    super(
      'UNKNOWN_TASK',
      `unknown task "${name}"; valid names: ${validNames.join(', ')} (or a path to a task module, e.g. ./my-task.ts)`,
    );
    this.validNames = validNames;
  }
}

/** A user task module that does not export a valid task definition. */
export class InvalidTaskModule extends ProgressBridgeError {
  constructor(path: string, problem: string) {
    super('INVALID_TASK_MODULE', `task module ${path}: ${problem}`);
  }
}

/** A vector env worker thread died or threw; the vector env cannot be used any more. */
export class WorkerFailed extends ProgressBridgeError {
  readonly workerIndex: number;
  constructor(workerIndex: number, message: string, options?: { cause?: unknown }) {
    super('WORKER_FAILED', `vector env worker ${workerIndex} failed: ${message}`, options);
    this.workerIndex = workerIndex;
  }
}

/** Any other call on a vector env that was closed or broken. */
export class EnvClosed extends ProgressBridgeError {
  constructor(message: string) {
    super('ENV_CLOSED', message);
  }
}

/** A camera name or id the model does not have; the message lists the valid names. */
export class UnknownCamera extends ProgressBridgeError {
  readonly validNames: readonly string[];
  constructor(camera: string, validNames: readonly string[]) {
    super(
      'UNKNOWN_CAMERA',
      validNames.length > 0
        ? `unknown camera ${camera}; the model's cameras are: ${validNames.join(', ')}`
        : `unknown camera ${camera}: the model has no cameras; use a free camera ({ pos, lookAt, fovy })`,
    );
    this.validNames = validNames;
  }
}

/** Why a checkpoint file was rejected: `reason` lets callers tell a half-written file from a foreign one. */
export type CheckpointProblem =
  'bad_magic' | 'unsupported_version' | 'truncated' | 'checksum_mismatch' | 'malformed';

/**
 * A checkpoint file that cannot be trusted (wrong magic, newer format, truncated, checksum mismatch). Raised
 * instead of handing back weights that would silently be garbage.
 */
export class CheckpointCorrupt extends ProgressBridgeError {
  readonly path: string;
  readonly reason: CheckpointProblem;
  constructor(path: string, reason: CheckpointProblem, detail: string) {
    super('CHECKPOINT_CORRUPT', `checkpoint ${path} is unusable (${reason}): ${detail}`);
    this.path = path;
    this.reason = reason;
  }
}

/** A file that is not a loadable ONNX model: truncated, not protobuf, or rejected by onnxruntime. */
export class InvalidOnnxModel extends ProgressBridgeError {
  readonly path: string;
  constructor(path: string, detail: string, options?: { cause?: unknown }) {
    super('INVALID_ONNX_MODEL', `${path} is not a valid ONNX model: ${detail}`, options);
    this.path = path;
  }
}

/** A valid ONNX model whose inputs or outputs are not the ones the caller needs (name, dtype or shape). */
export class OnnxSignatureMismatch extends ProgressBridgeError {
  readonly path: string;
  /** The input or output that does not match. */
  readonly tensor: string;
  constructor(path: string, tensor: string, detail: string) {
    super('ONNX_SIGNATURE_MISMATCH', `${path}: ${tensor}: ${detail}`);
    this.path = path;
    this.tensor = tensor;
  }
}

/** A PPO learner method called out of order (act twice without observe, update before the rollout is full, ...). */
export class RolloutOrderError extends ProgressBridgeError {
  constructor(message: string) {
    super('ROLLOUT_ORDER', message);
  }
}

/** How a call to a remote model server failed (see `RemoteModelError`). */
export type RemoteFailure = 'timeout' | 'network' | 'http' | 'bad_response' | 'mismatch' | 'closed';

/**
 * A call to a remote progress model server (OpenAI-compatible chat, KServe v2) failed: no answer in time, no
 * connection, an HTTP error status after the retries, a body that is not the protocol's JSON, a model whose
 * tensors do not match what the caller sends, or a client already closed. `kind` says which; `httpStatus` is
 * set for `http`.
 */
export class RemoteModelError extends ProgressBridgeError {
  readonly kind: RemoteFailure;
  readonly httpStatus: number | undefined;
  constructor(kind: RemoteFailure, message: string, options?: { cause?: unknown; httpStatus?: number }) {
    super('REMOTE_MODEL', message, options);
    this.kind = kind;
    this.httpStatus = options?.httpStatus;
  }
}

const CLASS_BY_CODE: Record<string, { prototype: ProgressBridgeError; name: string }> = {
  UNKNOWN_CAMERA: UnknownCamera,
  MODEL_LOAD: ModelLoadError,
  FILE_NOT_FOUND: FileNotFoundError,
  RESET_NEEDED: ResetNeeded,
  INVALID_ACTION: InvalidAction,
  INVALID_ARGUMENT: InvalidArgument,
  UNKNOWN_TASK: UnknownTask,
  INVALID_TASK_MODULE: InvalidTaskModule,
  WORKER_FAILED: WorkerFailed,
  ENV_CLOSED: EnvClosed,
  REMOTE_MODEL: RemoteModelError,
  CHECKPOINT_CORRUPT: CheckpointCorrupt,
  INVALID_ONNX_MODEL: InvalidOnnxModel,
  ONNX_SIGNATURE_MISMATCH: OnnxSignatureMismatch,
  ROLLOUT_ORDER: RolloutOrderError,
};

/**
 * Rebuilds an error that crossed a thread or process boundary as {code, message}: callers can still use
 * `instanceof` and `code` (class-specific fields such as `validNames` do not survive the trip).
 */
export function errorFromCode(code: string, message: string): ProgressBridgeError {
  const err = new ProgressBridgeError(code, message);
  const cls = CLASS_BY_CODE[code];
  if (cls) {
    Object.setPrototypeOf(err, cls.prototype);
    err.name = cls.name;
  }
  return err;
}
