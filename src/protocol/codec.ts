/**
 * Wire codec: one MessagePack map per WebSocket binary frame.
 *
 * msgpackr runs with records off (`useRecords: false`): its record extension is msgpackr-only and other
 * languages must decode our messages. `undefined` goes out as nil (the default is a msgpackr extension), and no
 * typed-array extension is used: tensors travel as plain `bin` (see tensor.ts for why).
 */
import { Packr } from 'msgpackr';
import { ProtocolError } from './errors.ts';
import { Message } from './messages.ts';

const packr = new Packr({
  useRecords: false,
  moreTypes: false,
  structuredClone: false,
  encodeUndefinedAsNil: true,
  mapsAsObjects: true,
  // Integers past 2^53 become plain numbers, never BigInt: every field of ours fits a double.
  int64AsType: 'number',
});

/** Encodes a message (not validated: producers build messages through typed code). */
export function encodeMessage(message: Message): Uint8Array {
  return packr.pack(message);
}

/** Decodes MessagePack bytes without validating them; MALFORMED_MESSAGE when they are not MessagePack. */
export function decodeRaw(data: Uint8Array): unknown {
  if (data.byteLength === 0) throw new ProtocolError('MALFORMED_MESSAGE', 'empty message');
  let value: unknown;
  try {
    // Trailing bytes after the first value would be a second message glued on: refuse them as malformed.
    const values = packr.unpackMultiple(data) as unknown[];
    if (values.length !== 1) {
      throw new ProtocolError('MALFORMED_MESSAGE', `one MessagePack value per frame, got ${values.length}`);
    }
    value = values[0];
  } catch (err) {
    if (err instanceof ProtocolError) throw err;
    throw new ProtocolError('MALFORMED_MESSAGE', `not MessagePack: ${(err as Error).message}`, '', {
      cause: err,
    });
  }
  return value;
}

/** Decodes and validates one message; throws ProtocolError with the offending field's code and path. */
export function decodeMessage(data: Uint8Array): Message {
  return Message.parse(decodeRaw(data));
}
