/** The progress-bridge wire protocol: messages, schemas, tensors, codec and error codes. */
export * from './codec.ts';
export * from './errors.ts';
export * from './learner.ts';
export * from './messages.ts';
export * from './schema.ts';
export * from './tensor.ts';
export * from './rig.ts';
