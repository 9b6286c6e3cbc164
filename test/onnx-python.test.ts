/**
 * Cross-checks against the reference `onnx` Python package, where one is installed (skipped otherwise): its
 * checker accepts what we write, its protobuf serializer reproduces our bytes exactly, and a model it builds (as
 * other exporters would) loads through our reader and `loadOnnxPolicy`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exportPolicyOnnx, loadOnnxPolicy, readOnnxMetadata } from '../src/onnx/index.ts';

const python = ['python3', '/usr/bin/python3'].find(
  (exe) => spawnSync(exe, ['-c', 'import onnx'], { stdio: 'ignore' }).status === 0,
);
const dir = mkdtempSync(join(tmpdir(), 'pbridge-onnx-py-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function py(script: string, ...args: string[]): string {
  const r = spawnSync(python!, ['-c', script, ...args], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`python failed: ${r.stderr}`);
  return r.stdout.trim();
}

describe.skipIf(!python)('against the onnx Python package', () => {
  it('the checker (full_check, strict shape inference) accepts an exported policy; re-serialising is byte-identical', async () => {
    const path = join(dir, 'p.onnx');
    await exportPolicyOnnx(
      {
        obsDim: 3,
        actDim: 2,
        layers: [
          { W: new Float32Array(12).fill(0.1), b: new Float32Array(4), activation: 'tanh' },
          { W: new Float32Array(8).fill(-0.2), b: Float32Array.of(1, 2), activation: 'none' },
        ],
        obsMean: [0, 1, 2],
        obsVar: [1, 4, 9],
        obsClip: 5,
        actionLow: -1,
        actionHigh: 1,
        metadata: { env: 'push' },
      },
      path,
    );
    const out = py(
      `import onnx, sys
m = onnx.load(sys.argv[1])
onnx.checker.check_model(m, full_check=True)
onnx.shape_inference.infer_shapes(m, strict_mode=True)
print(m.SerializeToString() == open(sys.argv[1], 'rb').read(), dict((p.key, p.value) for p in m.metadata_props)['env'])`,
      path,
    );
    expect(out).toBe('True push');
  });

  it('a model built by onnx.helper (MatMul + Add, initializers also listed as inputs) loads as a policy', async () => {
    const path = join(dir, 'foreign.onnx');
    py(
      `import onnx, sys
from onnx import helper, TensorProto
W = helper.make_tensor('W', TensorProto.FLOAT, [3, 2], [1, 0, 0, 1, 1, 1])
b = helper.make_tensor('b', TensorProto.FLOAT, [2], [0.5, -0.5])
g = helper.make_graph(
    [helper.make_node('MatMul', ['obs', 'W'], ['h']), helper.make_node('Add', ['h', 'b'], ['action'])],
    'torch_like',
    [helper.make_tensor_value_info('obs', TensorProto.FLOAT, ['batch', 3]),
     helper.make_tensor_value_info('W', TensorProto.FLOAT, [3, 2]),
     helper.make_tensor_value_info('b', TensorProto.FLOAT, [2])],
    [helper.make_tensor_value_info('action', TensorProto.FLOAT, ['batch', 2])],
    initializer=[W, b])
m = helper.make_model(g, opset_imports=[helper.make_opsetid('', 13)], producer_name='pytorch')
m.ir_version = 7
helper.set_model_props(m, {'algo': 'ppo', 'obs_dim': '3'})
onnx.save(m, sys.argv[1])`,
      path,
    );
    const info = await readOnnxMetadata(path);
    expect(info.metadata).toEqual({ algo: 'ppo', obs_dim: '3' });
    expect(info.producerName).toBe('pytorch');
    expect(info.inputs.map((i) => i.name)).toEqual(['obs']);
    const policy = await loadOnnxPolicy(path, { obsDim: 3, actDim: 2 });
    expect(Array.from(await policy.run(Float32Array.of(1, 2, 3), 1))).toEqual([4.5, 4.5]);
    await policy.close();
  });
});
