/**
 * External data files, opened the one way every reader (inspect, fp16, int8) must: the location
 * is relative, names a file, and its REAL path (symlinks resolved, the model's folder's too) lies
 * inside the model's real folder; it is a regular file, opened without blocking (a FIFO cannot
 * hang it), and the bytes a tensor claims lie inside it.
 */
import { realpathSync } from 'node:fs';
import { isAbsolute, join, normalize, relative, sep } from 'node:path';
import { MaasError, errnoCode } from '../core/errors.js';
import type { TensorRef } from './model.js';
import { FileSource, ProtobufError } from './protobuf.js';

const REEXPORT_HINT = 'Re-save the model with its external data files next to it (onnx.save(..., save_as_external_data=True)).';

function refuse(location: string, why: string): MaasError {
  return new MaasError('MAAS_MODEL_INVALID', `external data location '${location}' ${why}`, { hint: REEXPORT_HINT, details: { location } });
}

/** The location as the model names it, with forward slashes: how maas lists and stores it. */
export function externalName(location: string): string {
  return normalize(location).split(sep).join('/');
}

/** Opens an external data file of the model in `modelDir`, confined to that folder by real path. */
export function openExternalData(modelDir: string, location: string): FileSource {
  const clean = normalize(location);
  if (location.includes('\0')) throw refuse(location.replaceAll('\0', '\\0'), 'contains a NUL byte');
  if (isAbsolute(clean) || clean === '..' || clean.startsWith(`..${sep}`)) throw refuse(location, "points outside the model's folder");
  if (clean === '.' || clean.endsWith(sep)) throw refuse(location, 'names a folder, not a file');
  let real: string;
  let realDir: string;
  try {
    realDir = realpathSync(modelDir);
    real = realpathSync(join(modelDir, clean));
  } catch (error) {
    if (errnoCode(error) === 'ENOENT' || errnoCode(error) === 'ENOTDIR') {
      throw new MaasError('MAAS_MODEL_INVALID', `external data file '${location}' is missing`, {
        hint: `Put '${location}' next to the model file; ONNX resolves external data relative to the model.`,
        details: { location, expectedAt: join(modelDir, clean) },
        cause: error,
      });
    }
    if (errnoCode(error) === 'ELOOP') throw refuse(location, 'is a symlink loop');
    throw error;
  }
  const inside = relative(realDir, real);
  if (inside === '' || inside === '..' || inside.startsWith(`..${sep}`) || isAbsolute(inside)) {
    throw refuse(location, `resolves to ${real}, outside the model's folder (through a symlink)`);
  }
  try {
    return new FileSource(real);
  } catch (error) {
    if (error instanceof ProtobufError || errnoCode(error) === 'EISDIR') throw refuse(location, 'is not a regular file');
    throw error;
  }
}

/** The bytes a tensor's external data claims, checked against the file's size. */
export function externalRange(tensor: TensorRef, file: FileSource): { offset: number; length: number } {
  const data = tensor.data as Extract<TensorRef['data'], { kind: 'external' }>;
  const length = data.length ?? file.size - data.offset;
  if (length < 0 || data.offset + length > file.size) {
    throw new MaasError('MAAS_MODEL_INVALID', `external data for '${tensor.name}' lies past the end of '${data.location}'`, {
      hint: 'The external data file is truncated or belongs to another model; re-export the model.',
      details: { location: data.location, offset: data.offset, length, fileSize: file.size },
    });
  }
  return { offset: data.offset, length };
}
