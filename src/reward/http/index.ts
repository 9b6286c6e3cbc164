/** The `http` progress model backends: OpenAI-compatible chat VLMs (vlac, grm, generic adapters) and KServe v2. */
export { type AdapterAnswer, type Ask, type AskResult, type ProgressAdapter } from './adapter.ts';
export {
  ChatClient,
  type ChatClientOptions,
  type ChatCompletion,
  type ChatContentPart,
  type ChatMessage,
} from './chat-client.ts';
export {
  createHttpProgressModel,
  HTTP_ADAPTERS,
  type CreateHttpProgressModelOptions,
  type HttpAdapterName,
} from './factory.ts';
export {
  buildGenericPrompt,
  GenericAdapter,
  parseGenericProgress,
  type GenericAdapterOptions,
} from './generic.ts';
export {
  applyHop,
  buildGrmPrompt,
  DEFAULT_GRM_PROMPT,
  fuseEstimates,
  GRM_ESTIMATES,
  GrmAdapter,
  parseGrmHop,
  type GrmAdapterOptions,
  type GrmEstimate,
  type GrmImages,
  type GrmPromptText,
} from './grm.ts';
export { HttpProgressModel, type HttpProgressModelOptions } from './http-progress-model.ts';
export { blankImage, pngDataUrl } from './image-url.ts';
export {
  KServeClient,
  type KServeDatatype,
  type KServeInferOptions,
  type KServeInferResponse,
  type KServeModelMetadata,
  type KServeOutputTensor,
  type KServeTensor,
  type KServeTensorSpec,
} from './kserve.ts';
export {
  checkInputs,
  KServeProgressModel,
  type KServeEncode,
  type KServeProgressModelOptions,
} from './kserve-progress-model.ts';
export { type HttpClientOptions } from './options.ts';
export {
  applyVlacDelta,
  buildVlacPrompt,
  parseVlacDelta,
  VlacAdapter,
  type VlacAdapterOptions,
} from './vlac.ts';
