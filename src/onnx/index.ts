export { GraphBuilder, type ModelOptions } from './builder.ts';
export {
  encodeModel,
  IR_VERSION,
  OPSET_VERSION,
  type AttributeValue,
  type Dim,
  type GraphProto,
  type ModelProto,
  type NodeProto,
  type OnnxElemType,
  type TensorProto,
  type ValueInfoProto,
} from './model.ts';
export {
  buildPolicyOnnx,
  exportPolicyOnnx,
  loadOnnxPolicy,
  POLICY_FORMAT,
  POLICY_INPUT,
  POLICY_OUTPUT,
  type LoadPolicyOptions,
  type MlpLayer,
  type OnnxPolicy,
  type PolicyExportSpec,
} from './policy.ts';
export { parseOnnxMetadata, readOnnxMetadata, type OnnxModelInfo, type OnnxValueInfo } from './reader.ts';
