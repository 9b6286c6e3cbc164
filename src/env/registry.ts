/**
 * Task registry: built-in tasks by name, user tasks by file path. A name the registry does not know fails
 * with the list of valid names.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FileNotFoundError, InvalidTaskModule, UnknownTask } from '../sim/errors.ts';
import { isTaskDefinition, type TaskDefinition } from './task.ts';

const BUILTIN: Record<string, () => Promise<{ default: TaskDefinition }>> = {
  reach: () => import('../../envs/reach/task.ts'),
  push: () => import('../../envs/push/task.ts'),
  'pick-place': () => import('../../envs/pick-place/task.ts'),
  'drawer-open': () => import('../../envs/drawer-open/task.ts'),
  stack: () => import('../../envs/stack/task.ts'),
};

/** Names of the built-in tasks, in the order the docs list them. */
export const TASK_NAMES: readonly string[] = Object.keys(BUILTIN);

/** The default task of the main job. */
export const DEFAULT_TASK = 'push';

function looksLikePath(spec: string): boolean {
  return spec.includes('/') || spec.includes('\\') || /\.(ts|mts|js|mjs)$/.test(spec);
}

/**
 * Resolves a task: a registry name, or a path to a module whose default export (or export named `task`)
 * is a TaskDefinition.
 */
export async function resolveTask(spec: string): Promise<TaskDefinition> {
  if (looksLikePath(spec)) return loadTaskModule(spec);
  const load = BUILTIN[spec];
  if (!load) throw new UnknownTask(spec, TASK_NAMES);
  return (await load()).default;
}

export async function loadTaskModule(path: string): Promise<TaskDefinition> {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new FileNotFoundError(path, 'task module');
  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(abs).href)) as Record<string, unknown>;
  } catch (err) {
    throw new InvalidTaskModule(path, `failed to import: ${(err as Error).message}`);
  }
  const candidate = mod.default ?? mod.task;
  if (!isTaskDefinition(candidate)) {
    throw new InvalidTaskModule(
      path,
      'must export (default or as `task`) an object with name, instruction, scenePath, episodeSteps and create()',
    );
  }
  return candidate;
}
