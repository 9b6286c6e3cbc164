/**
 * Replace a file so that a reader (or the next run after a crash) sees either the old content or the new, never
 * a mix: write a temporary file in the same directory, fsync it, rename it over the target, fsync the directory.
 */
import { open, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';

/** What `atomicWriteFile` accepts: all at once, or chunks (which may throw midway: the target is then untouched). */
export type AtomicWriteData = string | Uint8Array | Iterable<Uint8Array> | AsyncIterable<Uint8Array>;

/**
 * Writes `data` to `path` atomically. On any failure the temporary file is removed and the previous content of
 * `path` (if any) is left as it was; the error is rethrown.
 */
export async function atomicWriteFile(path: string, data: AtomicWriteData): Promise<void> {
  const dir = dirname(path);
  // Same directory as the target: rename is only atomic within one filesystem. The dot prefix keeps the
  // half-written file out of globs such as `*.ckpt`.
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const handle = await open(tmp, 'wx');
  try {
    try {
      if (typeof data === 'string' || data instanceof Uint8Array) {
        await handle.writeFile(data);
      } else {
        for await (const chunk of data) await writeAll(handle, chunk);
      }
      // Without this the rename can reach the disk before the data and a power cut leaves an empty file.
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  await syncDir(dir);
}

async function writeAll(handle: import('node:fs/promises').FileHandle, chunk: Uint8Array): Promise<void> {
  let done = 0;
  while (done < chunk.byteLength) {
    const { bytesWritten } = await handle.write(chunk, done, chunk.byteLength - done);
    done += bytesWritten;
  }
}

/** Makes the rename itself durable. Some platforms (Windows) cannot open a directory; the rename still happened. */
async function syncDir(dir: string): Promise<void> {
  let handle;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Durability of the directory entry is best effort; atomicity does not depend on it.
  } finally {
    await handle?.close();
  }
}
