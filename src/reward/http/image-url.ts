/** Frames as the `data:` URLs that OpenAI-compatible servers accept in `image_url` parts. */
import { encodePng } from '../../render/png.ts';
import type { ProgressImage } from '../model.ts';

/** `data:image/png;base64,...` of an RGB frame; PNG because it is lossless and we have our own encoder. */
export function pngDataUrl(image: ProgressImage): string {
  // Level 1: frames are re-encoded for every request, and deflate effort buys little on rendered frames.
  const png = encodePng(image.rgb, image.width, image.height, { level: 1 });
  return `data:image/png;base64,${png.toString('base64')}`;
}

/** A black frame: the stand-in where a prompt has a slot for an image the request does not have (a goal). */
export function blankImage(width: number, height: number): ProgressImage {
  return { width, height, rgb: new Uint8Array(width * height * 3) };
}
