/**
 * KServe v2 REST's wire format: a JSON header, optionally followed by binary tensor data
 * (Inference-Header-Content-Length), in both directions.
 */
import { constants } from 'node:buffer';
import { MaasError } from '../../core/errors.js';
import type { Signature } from '../../onnx/inspect.js';
import { type ParsedInfer, badInput, decodeInferRequest } from '../../inference/protocol.js';
import { JSON_SLICE_ELEMENTS, jsonDataInSlices, jsonDataText, kserveDatatype, toBinary, type WireTensor } from '../../inference/tensors.js';

export const HEADER_LENGTH = 'inference-header-content-length';

/** Splits a body into its JSON header and binary tail per Inference-Header-Content-Length. */
export function splitBody(body: Buffer, headerLength: string | undefined): { json: unknown; binary: Buffer } {
  let jsonLength = body.length;
  if (headerLength !== undefined) {
    if (!/^\d+$/.test(headerLength) || Number(headerLength) > body.length) {
      throw badInput(`Inference-Header-Content-Length ${JSON.stringify(headerLength.slice(0, 40))} is not a length within the ${body.length}-byte body`);
    }
    jsonLength = Number(headerLength);
  }
  if (jsonLength > constants.MAX_STRING_LENGTH) {
    throw new MaasError('MAAS_PAYLOAD_TOO_LARGE', `the request's JSON (${jsonLength} bytes) is longer than a JavaScript string can be`, {
      hint: 'Send large tensors with the binary tensor extension (parameters.binary_data_size).',
    });
  }
  try {
    return { json: JSON.parse(body.subarray(0, jsonLength).toString('utf8')), binary: body.subarray(jsonLength) };
  } catch (error) {
    throw badInput(`the request body is not valid JSON: ${(error as Error).message}`);
  }
}

export function parseInferRequest(body: Buffer, headerLength: string | undefined, signature: Signature, options: { float16Numbers?: boolean } = {}): ParsedInfer {
  const { json, binary } = splitBody(body, headerLength);
  return decodeInferRequest(json, binary, signature, options);
}

export interface EncodedResponse {
  /** JSON alone as text: node:http sends a string in one write with the headers. */
  body: Buffer | string;
  headers: Record<string, string>;
}

interface InferAnswer {
  model: string;
  version: number;
  id: string | undefined;
  outputs: Record<string, WireTensor>;
  order: string[];
  binaryOutputs: Set<string>;
}

/**
 * The answer at once when every JSON output is small (no await on a tiny model's path); a
 * promise when one is large, written in slices so that other requests are answered meanwhile.
 */
export function encodeInferResponse(args: InferAnswer): EncodedResponse | Promise<EncodedResponse> {
  const isLarge = (name: string) => !args.binaryOutputs.has(name) && args.outputs[name]!.data.length > JSON_SLICE_ELEMENTS;
  if (!args.order.some(isLarge)) return encodeWith(args, NONE_WRITTEN);
  const large = args.order.filter(isLarge);
  return (async () => {
    const written = new Map<string, Buffer[]>();
    for (const name of large) written.set(name, await jsonDataInSlices(args.outputs[name]!));
    return encodeWith(args, written);
  })();
}

const NONE_WRITTEN = new Map<string, Buffer[]>();

/** `written`: the JSON data of the outputs already written in slices, as bytes. */
function encodeWith(args: InferAnswer, written: Map<string, Buffer[]>): EncodedResponse {
  // Written as text piece by piece, not built as objects for JSON.stringify: on a tiny model this
  // is a fifth of the server's own time per request (BENCHMARKS.md).
  const jsonPieces: Buffer[] = [];
  const chunks: Buffer[] = [];
  let text = `{"model_name":${JSON.stringify(args.model)},"model_version":"${args.version}",${args.id === undefined ? '' : `"id":${JSON.stringify(args.id)},`}"outputs":[`;
  args.order.forEach((name, i) => {
    const tensor = args.outputs[name]!;
    text += `${i === 0 ? '' : ','}{"name":${JSON.stringify(name)},"datatype":"${kserveDatatype(tensor.type)}","shape":[${tensor.dims.join(',')}],`;
    if (!args.binaryOutputs.has(name)) {
      const slices = written.get(name);
      if (!slices) {
        text += `"data":${jsonDataText(tensor)}}`;
        return;
      }
      jsonPieces.push(Buffer.from(`${text}"data":`), ...slices);
      text = '}';
      return;
    }
    const bytes = toBinary(tensor);
    chunks.push(bytes);
    text += `"parameters":{"binary_data_size":${bytes.length}}}`;
  });
  text += ']}';
  if (jsonPieces.length === 0 && chunks.length === 0) return { body: text, headers: { 'content-type': 'application/json' } };
  const json = Buffer.concat([...jsonPieces, Buffer.from(text)]);
  if (chunks.length === 0) return { body: json, headers: { 'content-type': 'application/json' } };
  return {
    body: Buffer.concat([json, ...chunks]),
    headers: { 'content-type': 'application/octet-stream', [HEADER_LENGTH]: String(json.length) },
  };
}
