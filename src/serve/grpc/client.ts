/**
 * A client of a running server's gRPC service, for `maas predict --grpc`: a KServe v2 JSON
 * infer request in, sent as a ModelInferRequest with raw contents, and the answer back in
 * the same JSON form REST gives, so the output does not depend on the transport.
 */
import { isIP } from 'node:net';
import type * as grpc from '@grpc/grpc-js';
import { connectionFailure, readClientTls } from '../../core/client-tls.js';
import { MaasError, messageOf } from '../../core/errors.js';
import { asBadInput, badInput, classificationRefused, isObject } from '../../inference/protocol.js';
import { badShape, fromBinary, fromJsonData, ortTypeOfKserve, toBinary, toJsonData } from '../../inference/tensors.js';
import { BUDGET_EXCEEDED_HINT } from '../http/client.js';
import type { ModelInferRequest, ModelInferResponse } from './codec.js';
import { loadGrpc, loadServiceDefinition } from './proto.js';

export interface GrpcTarget {
  /** host:port */
  address: string;
  token?: string | undefined;
  /** TLS: the CA that signed the server's certificate; with cert and key, a client certificate (mTLS). */
  tls?: { ca?: string | undefined; cert?: string | undefined; key?: string | undefined } | undefined;
  timeoutMs: number;
  cwd: string;
}

/**
 * The JSON request's tensors as raw contents: the client needs no signature, the server checks
 * them. FP16 values are JSON numbers here, sent as float16 bits: raw is FP16's only gRPC form.
 */
export function toModelInferRequest(json: unknown, model: string, version: string): ModelInferRequest {
  if (!isObject(json) || !Array.isArray(json.inputs) || json.inputs.length === 0) throw badInput('the request must be a JSON object with a non-empty "inputs"');
  const listed: unknown[] = json.inputs;
  const inputs = asBadInput(() => listed.map((input, i) => {
    if (!isObject(input) || typeof input.name !== 'string' || typeof input.datatype !== 'string') throw badInput(`inputs[${i}] needs a "name" and a "datatype"`);
    const type = ortTypeOfKserve(input.datatype);
    if (!type) throw badInput(`input '${input.name}' has an unknown datatype ${JSON.stringify(input.datatype)}`);
    const problem = badShape(input.shape);
    if (problem) throw badInput(`input '${input.name}' ${problem}`);
    const dims = input.shape as number[];
    return { name: input.name, datatype: input.datatype, shape: dims, data: toBinary({ type, dims, data: fromJsonData(input.name, type, dims, input.data, { float16Numbers: true }) }) };
  }));
  const outputs = Array.isArray(json.outputs) ? json.outputs.map((o: unknown) => {
    const name = isObject(o) ? String(o.name) : String(o);
    // The server would refuse it too; here it would be lost, as only names are sent.
    if (isObject(o) && isObject(o.parameters) && o.parameters.classification !== undefined) throw classificationRefused(name);
    return { name };
  }) : [];
  return {
    model_name: model,
    model_version: version,
    id: typeof json.id === 'string' ? json.id : '',
    inputs: inputs.map(({ name, datatype, shape }) => ({ name, datatype, shape, contents: null })),
    outputs,
    raw_input_contents: inputs.map((i) => i.data),
  };
}

/** The answer as REST's JSON: model, version, id, and each output's data. */
export function fromModelInferResponse(response: ModelInferResponse): Record<string, unknown> {
  const outputs = response.outputs.map((o, i) => {
    const type = ortTypeOfKserve(o.datatype);
    const dims = o.shape.map(Number);
    const raw = response.raw_output_contents[i];
    if (!type || raw === undefined) throw new MaasError('MAAS_REMOTE_REJECTED', `the server answered output '${o.name}' without raw contents of a known datatype`);
    return { name: o.name, datatype: o.datatype, shape: dims, data: toJsonData({ type, dims, data: fromBinary(o.name, type, dims, raw) }) };
  });
  return { model_name: response.model_name, model_version: response.model_version, ...(response.id ? { id: response.id } : {}), outputs };
}

/** gRPC statuses as maas errors, with the exit codes DESIGN.md gives them. */
function asMaasError(error: grpc.ServiceError, address: string, sentCertificate: boolean): MaasError {
  const code = error.metadata?.get('maas-error-code')[0];
  // grpc-js ends connection failures with an empty `Resolution note: `.
  const details = (error.details || error.message).replace(/\s*Resolution note:\s*$/, '');
  switch (error.code) {
    case 3: return new MaasError('MAAS_BAD_INPUT', details, { hint: 'Fix the request; the message says what is wrong with it.' });
    case 5: return new MaasError(code === 'MAAS_VERSION_NOT_FOUND' ? 'MAAS_VERSION_NOT_FOUND' : 'MAAS_MODEL_NOT_FOUND', details, { hint: 'ModelMetadata (or GET /v2/models/NAME over REST) lists the versions the server serves.' });
    case 16: return new MaasError('MAAS_REMOTE_UNAUTHORIZED', details, { hint: 'Pass the server\'s token with --token (or MAAS_TOKEN).' });
    // UNAVAILABLE with a maas code is the server's answer (queue full, loading, draining), not a failed connection.
    case 14:
      if (code !== undefined) return new MaasError('MAAS_REMOTE_REJECTED', `the server answered 14 (UNAVAILABLE): ${details}`, { hint: 'The server is busy, loading the model or stopping: retry after a moment.' });
      return connectionFailure(`${address} over gRPC`, details, sentCertificate, 'Check the address and that the server runs with --grpc-port; with TLS, pass --tls-ca, and --tls-cert with --tls-key when it asks for client certificates.');
    case 4: return new MaasError('MAAS_TIMEOUT', details, { hint: 'Raise --timeout-ms.' });
    // grpc-js refuses an oversized message before maas sees it, in its own words and without maas-error-code.
    case 8:
      if (code === undefined && /^Received message .*larger than/.test(details)) {
        return new MaasError('MAAS_PAYLOAD_TOO_LARGE', `the server refused the request as too large: ${details}`, { hint: "The server takes messages up to its --max-body-mb: raise it there, or send fewer rows a request." });
      }
      // As REST's 507: the version cannot fit beside the pinned ones, and no retry helps.
      if (code === 'MAAS_BUDGET_EXCEEDED') return new MaasError('MAAS_BUDGET_EXCEEDED', details, { hint: BUDGET_EXCEEDED_HINT });
      return new MaasError('MAAS_REMOTE_REJECTED', `the server answered 8 (RESOURCE_EXHAUSTED): ${details}`, { hint: 'The server lacks the resources for it now: retry after a moment.' });
    default: return new MaasError('MAAS_REMOTE_REJECTED', `the server answered ${error.code}: ${details}`);
  }
}

/**
 * Runs a call without Node's DEP0123 warning. grpc-js names the server for SNI by its host even
 * when that is an IP, which RFC 6066 forbids and Node warns about; the certificate is still
 * checked against the IP, so the warning tells the user nothing they can act on.
 */
async function withoutIpServernameWarning<T>(call: () => Promise<T>): Promise<T> {
  const emit = process.emitWarning;
  process.emitWarning = function (this: unknown, warning: string | Error, ...rest: unknown[]) {
    if (rest[1] === 'DEP0123') return;
    return (emit as (...args: unknown[]) => void).call(process, warning, ...rest);
  } as typeof process.emitWarning;
  try {
    return await call();
  } finally {
    process.emitWarning = emit;
  }
}

export async function grpcPredict(request: Buffer, model: string, version: string, target: GrpcTarget): Promise<Record<string, unknown>> {
  let json: unknown;
  try {
    json = JSON.parse(request.toString('utf8'));
  } catch (error) {
    throw badInput(`the request is not valid JSON: ${messageOf(error)}`);
  }
  const message = toModelInferRequest(json, model, version);
  const grpcModule = await loadGrpc();
  const { ctor } = await loadServiceDefinition(grpcModule);
  const tls = target.tls ? readClientTls(target.tls, target.cwd) : undefined;
  const credentials = tls
    ? grpcModule.credentials.createSsl(tls.ca ?? null, tls.key ?? null, tls.cert ?? null)
    : grpcModule.credentials.createInsecure();
  const client = new ctor(target.address, credentials, { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
  const metadata = new grpcModule.Metadata();
  if (target.token) metadata.set('authorization', `Bearer ${target.token}`);
  const call = () => new Promise<ModelInferResponse>((resolve, reject) => {
    (client.ModelInfer as (r: ModelInferRequest, m: grpc.Metadata, o: grpc.CallOptions, cb: (e: grpc.ServiceError | null, r: ModelInferResponse) => void) => void)(
      message, metadata, { deadline: Date.now() + target.timeoutMs },
      (error, answer) => (error ? reject(asMaasError(error, target.address, tls?.cert !== undefined)) : resolve(answer)),
    );
  });
  const host = target.address.replace(/:\d+$/, '').replace(/^\[(.*)\]$/, '$1');
  try {
    const response = await (target.tls && isIP(host) ? withoutIpServernameWarning(call) : call());
    return fromModelInferResponse(response);
  } finally {
    client.close();
  }
}
