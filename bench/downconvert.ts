/**
 * Down-converts an MJCF scene written for MuJoCo 3.x to what MuJoCo 2.2 (Debian's libmujoco-dev) loads, for the
 * native baseline. The converted files keep the repository layout under an output folder, so `<include>` and
 * asset paths resolve as before. Changes, each only where the scene uses the feature:
 *
 * - `<position kp kv>` actuators (kv is 3.x-only) become `<general gaintype="fixed" biastype="affine"
 *   gainprm="kp" biasprm="0 -kp -kv">`: exactly what 3.x compiles a position actuator to. Defaults are resolved
 *   through the class chain; `<position>` entries in `<default>` lose kp/kv and become `<general>`.
 * - `gravcomp` on bodies and `actuatorgravcomp` on joints are removed (2.2 has no gravity compensation): the
 *   arm sags slightly, so the physics differs from 3.x; both builds are timed on the converted model.
 * - `<size memory>` (3.x arena size) is removed: 2.2 sizes its stack itself; this changes allocation only.
 * - `integrator="implicitfast"` becomes `implicit` (2.2 has no implicitfast; implicit also differentiates the
 *   Coriolis terms, a little more work per step).
 *
 * This is a regex-level transform for the repository's own, well-formed scenes, not a general MJCF converter;
 * anything it does not know stays and the native loader reports it.
 */
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { collectAssets } from '../src/sim/mujoco.ts';

export interface Converted {
  /** The converted main scene file. */
  scenePath: string;
  /** One line per kind of change, with the files and counts. */
  changes: string[];
}

const TAG = /<(\/?)([A-Za-z_][\w.-]*)((?:\s+[\w:.-]+\s*=\s*"[^"]*")*)\s*(\/?)>/g;
const ATTR = /([\w:.-]+)\s*=\s*"([^"]*)"/g;
const COMMENT = /<!--[\s\S]*?-->/g;

type Attrs = Map<string, string>;

function parseAttrs(text: string): Attrs {
  const m = new Map<string, string>();
  for (const a of text.matchAll(ATTR)) m.set(a[1]!, a[2]!);
  return m;
}

function formatTag(name: string, attrs: Attrs, selfClosing: boolean): string {
  const parts = [...attrs].map(([k, v]) => ` ${k}="${v}"`).join('');
  return `<${name}${parts}${selfClosing ? '/' : ''}>`;
}

interface DefaultClass {
  parent: string | undefined;
  position: Attrs | undefined;
}

/** Default classes of all files (class name -> parent and its `<position>` attributes). */
function collectDefaults(texts: string[]): Map<string, DefaultClass> {
  const classes = new Map<string, DefaultClass>();
  for (const text of texts) {
    const stack: string[] = [];
    for (const m of text.matchAll(TAG)) {
      const [, close, name, attrText, self] = m;
      if (name === 'default') {
        if (close) stack.pop();
        else if (!self) {
          const cls = parseAttrs(attrText!).get('class') ?? 'main';
          if (!classes.has(cls)) classes.set(cls, { parent: stack[stack.length - 1], position: undefined });
          stack.push(cls);
        }
      } else if (name === 'position' && !close && stack.length > 0) {
        classes.get(stack[stack.length - 1]!)!.position = parseAttrs(attrText!);
      }
    }
  }
  return classes;
}

function lookup(classes: Map<string, DefaultClass>, cls: string, key: string): string | undefined {
  for (let c: string | undefined = cls; c !== undefined; c = classes.get(c)?.parent) {
    const v = classes.get(c)?.position?.get(key);
    if (v !== undefined) return v;
  }
  return undefined;
}

/** Converts `scenePath` (and everything it includes) into `outRoot`, keeping paths relative to `repoRoot`. */
export function downconvertScene(scenePath: string, repoRoot: string, outRoot: string): Converted {
  const files = collectAssets(resolve(scenePath));
  const xml = files.filter((f) => f.endsWith('.xml'));
  const texts = new Map(xml.map((f) => [f, readFileSync(f, 'utf8').replace(COMMENT, '')]));
  const classes = collectDefaults([...texts.values()]);
  const counts = new Map<string, Map<string, number>>();
  const note = (kind: string, file: string): void => {
    const byFile = counts.get(kind) ?? new Map<string, number>();
    byFile.set(file, (byFile.get(file) ?? 0) + 1);
    counts.set(kind, byFile);
  };

  for (const file of files) {
    const rel = relative(repoRoot, file);
    if (rel.startsWith('..') || isAbsolute(rel)) throw new Error(`${file} is outside the repository`);
    const target = join(outRoot, rel);
    mkdirSync(dirname(target), { recursive: true });
    const text = texts.get(file);
    if (text === undefined) {
      copyFileSync(file, target);
      continue;
    }
    const stack: string[] = [];
    const out = text.replace(TAG, (whole, close: string, name: string, attrText: string, self: string) => {
      if (close) {
        if (name === 'default') stack.pop();
        return whole;
      }
      const attrs = parseAttrs(attrText);
      if (name === 'default' && !self) stack.push(attrs.get('class') ?? 'main');
      if (name === 'position' && stack.length > 0) {
        attrs.delete('kp');
        attrs.delete('kv');
        note('position-default', rel);
        return formatTag('general', attrs, self === '/');
      }
      if (name === 'position') {
        const cls = attrs.get('class') ?? 'main';
        const kp = Number(attrs.get('kp') ?? lookup(classes, cls, 'kp') ?? 1);
        const kv = Number(attrs.get('kv') ?? lookup(classes, cls, 'kv') ?? 0);
        attrs.delete('kp');
        attrs.delete('kv');
        attrs.set('gaintype', 'fixed');
        attrs.set('biastype', 'affine');
        attrs.set('gainprm', `${kp}`);
        attrs.set('biasprm', `0 ${-kp} ${-kv}`);
        note('position', rel);
        return formatTag('general', attrs, self === '/');
      }
      let changed = false;
      if (attrs.has('gravcomp')) {
        attrs.delete('gravcomp');
        note('gravcomp', rel);
        changed = true;
      }
      if (attrs.has('actuatorgravcomp')) {
        attrs.delete('actuatorgravcomp');
        note('actuatorgravcomp', rel);
        changed = true;
      }
      if (name === 'size' && attrs.has('memory')) {
        attrs.delete('memory');
        note('memory', rel);
        changed = true;
      }
      if (attrs.get('integrator') === 'implicitfast') {
        attrs.set('integrator', 'implicit');
        note('implicitfast', rel);
        changed = true;
      }
      return changed ? formatTag(name, attrs, self === '/') : whole;
    });
    writeFileSync(target, out);
  }

  const describe: Record<string, string> = {
    position:
      '`<position kp kv>` actuators -> `<general>` with gainprm = kp, biasprm = (0, -kp, -kv) (same forces)',
    'position-default':
      '`<position>` defaults -> `<general>` defaults without kp/kv (resolved into each actuator)',
    gravcomp: '`gravcomp` removed from bodies (2.2 has none: the arm sags a little under its servos)',
    actuatorgravcomp: '`actuatorgravcomp` removed from joints',
    memory: '`<size memory>` removed (2.2 sizes its stack with nstack; only allocation differs)',
    implicitfast: '`integrator="implicitfast"` -> `implicit` (2.2 has no implicitfast)',
  };
  const changes = [...counts].map(([kind, byFile]) => {
    const where = [...byFile].map(([f, n]) => `${f} x${n}`).join(', ');
    return `${describe[kind] ?? kind}: ${where}`;
  });
  return { scenePath: join(outRoot, relative(repoRoot, resolve(scenePath))), changes };
}
