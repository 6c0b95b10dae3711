/** A gRPC client of `maas serve --grpc-port`, built from the package's own .proto with @grpc/grpc-js, as any KServe client would be. */
import * as grpc from '@grpc/grpc-js';
import * as loader from '@grpc/proto-loader';
import { onTestFinished } from 'vitest';
import { PROTO_FILE, PROTO_OPTIONS } from '../../src/serve/grpc/proto.js';

type Callback = (error: grpc.ServiceError | null, response: any) => void;
type Method = (request: unknown, metadata: grpc.Metadata, options: grpc.CallOptions, callback: Callback) => void;

export interface GrpcClient {
  /** resolves with the response, or rejects with the ServiceError (its `code` a grpc.status). */
  call(method: string, request: unknown, options?: { token?: string; deadlineMs?: number }): Promise<any>;
  close(): void;
}

const definition = loader.loadSync(PROTO_FILE, PROTO_OPTIONS);
const Service = (grpc.loadPackageDefinition(definition).inference as grpc.GrpcObject).GRPCInferenceService as grpc.ServiceClientConstructor;

export function grpcClient(address: string, credentials: grpc.ChannelCredentials = grpc.credentials.createInsecure(), channelOptions: grpc.ChannelOptions = {}): GrpcClient {
  const client = new Service(address, credentials, { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1, ...channelOptions }) as unknown as Record<string, Method> & grpc.Client;
  onTestFinished(() => client.close());
  return {
    call: (method, request, options = {}) => new Promise((resolve, reject) => {
      const metadata = new grpc.Metadata();
      if (options.token) metadata.set('authorization', `Bearer ${options.token}`);
      const deadline = Date.now() + (options.deadlineMs ?? 30_000);
      client[method]!.call(client, request, metadata, { deadline }, (error, response) => (error ? reject(error) : resolve(response)));
    }),
    close: () => client.close(),
  };
}

/** The status a call failed with, or 'OK'. */
export async function statusOf(call: Promise<unknown>): Promise<string> {
  try {
    await call;
    return 'OK';
  } catch (error) {
    return grpc.status[(error as grpc.ServiceError).code] ?? String((error as grpc.ServiceError).code);
  }
}
