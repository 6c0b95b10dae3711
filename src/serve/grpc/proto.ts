/** The Open Inference Protocol's service definition, loaded from the package's own .proto on first use. */
import { fileURLToPath } from 'node:url';
import type * as grpc from '@grpc/grpc-js';

/** proto/ at the package root: two folders up from src/serve/grpc and from dist/serve/grpc alike. */
export const PROTO_FILE = fileURLToPath(new URL('../../../proto/open_inference_grpc.proto', import.meta.url));

/**
 * Field names as the .proto spells them, 64-bit integers as decimal strings (exact, unlike
 * numbers), absent repeated fields as empty lists.
 */
export const PROTO_OPTIONS = { keepCase: true, longs: String, enums: String, defaults: true, oneofs: true } as const;

export function loadGrpc(): Promise<typeof grpc> {
  return import('@grpc/grpc-js');
}

export async function loadServiceDefinition(grpcModule: typeof grpc): Promise<grpc.ServiceDefinition & { ctor: grpc.ServiceClientConstructor }> {
  const loader = await import('@grpc/proto-loader');
  const definition = loader.loadSync(PROTO_FILE, PROTO_OPTIONS);
  const ctor = (grpcModule.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;
  return Object.assign(ctor.service, { ctor });
}
