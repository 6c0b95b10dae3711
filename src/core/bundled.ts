import { fileURLToPath } from 'node:url';

/** The fixture model the package ships (package.json `files`): the demo serves it, doctor loads it on every provider. */
export const BUNDLED_MODEL = fileURLToPath(new URL('../../fixtures/mlp.onnx', import.meta.url));
