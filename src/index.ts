/** Programmatic API: the same domain functions the CLI calls. */
export { run } from './cli.js';
export { MaasError, EXIT_CODES, type ErrorCode } from './core/errors.js';
export { initRegistry } from './registry/init.js';
export { registerModel } from './registry/register.js';
export { listModels, showModel } from './registry/query.js';
export { tagVersion } from './registry/tag.js';
export { diffVersions } from './registry/diff.js';
export { verifyRegistry } from './registry/verify.js';
export { removeVersion } from './registry/remove.js';
export { collectGarbage } from './registry/gc.js';
export { inspectModel, type ModelInfo, type Signature, type TensorSpec } from './onnx/inspect.js';
export { diffSignatures, type SignatureChange } from './onnx/signature-diff.js';
