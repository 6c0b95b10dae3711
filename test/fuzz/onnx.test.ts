/**
 * ONNX fuzz suite: a generated, seeded corpus of malformed ONNX files — mutated protobuf bytes of
 * real generated models, truncations, huge varints and lengths, huge dims, cycles, deep nesting,
 * external data that escapes the model's folder, is a symlink out, a FIFO or a folder. `maas
 * register` on every one exits 0 (still a valid model) or 7 with a message: never 1, never a
 * stack trace, never a hang, and nothing outside the registry is read or written.
 *
 * In-process with --no-load-check for speed; a sample runs through the spawned CLI with the load
 * check (an onnxruntime child). MAAS_FUZZ_MUTATIONS raises the number of byte mutations per model.
 */
import { execFileSync, spawn } from 'node:child_process';
import { lstatSync, mkdirSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { describe, expect, it } from 'vitest';
import { manyDims, nestedIf, nestedSequence, writeExternalMlp } from '../../fixtures/hostile.js';
import { allTypes, constantWeights, mlp, multiIo, seededRandom } from '../../fixtures/models.js';
import { modelProto, type tensorProto, valueInfoProto } from '../../src/onnx/build.js';
import { DataType } from '../../src/onnx/dtypes.js';
import { ProtoWriter } from '../../src/onnx/protobuf.js';
import { BIN } from '../helpers/run-cli.js';
import { makeRegistry } from '../helpers/registry.js';

const MUTATIONS_PER_MODEL = Number(process.env.MAAS_FUZZ_MUTATIONS ?? 12);
const CASE_TIMEOUT_MS = 20_000;

interface Case {
  name: string;
  /** writes the case into `dir` (its own folder) and returns the model's path. */
  write: (dir: string, outside: string) => string;
  /** an escape attempt: must be refused, and `outside` must never be read into the registry. */
  escapes?: boolean;
}

const bytesOf = (model: Parameters<typeof modelProto>[0]) => modelProto(model).toBuffer();
const bases: [string, Buffer][] = [
  ['mlp', bytesOf(mlp().model)],
  ['constant_weights', bytesOf(constantWeights({ branches: true }))],
  ['multi_io', bytesOf(multiIo())],
  ['all_types', bytesOf(allTypes())],
];
const SECRET = Buffer.from(mlp({ externalData: 'w.bin' }).externalData!);

function file(name: string, bytes: Buffer): Case['write'] {
  return (dir) => {
    writeFileSync(join(dir, name), bytes);
    return join(dir, name);
  };
}

/** Seeded byte-level mutations: overwrite, bit flip, insert, delete, and a huge varint spliced in. */
function mutate(bytes: Buffer, next: () => number): { what: string; bytes: Buffer } {
  const at = Math.floor(next() * bytes.length);
  const kind = Math.floor(next() * 5);
  const out = Buffer.from(bytes);
  switch (kind) {
    case 0: out[at] = Math.floor(next() * 256); return { what: `byte ${at} set`, bytes: out };
    case 1: out[at] = out[at]! ^ (1 << Math.floor(next() * 8)); return { what: `bit flip at ${at}`, bytes: out };
    case 2: return { what: `byte inserted at ${at}`, bytes: Buffer.concat([bytes.subarray(0, at), Buffer.from([Math.floor(next() * 256)]), bytes.subarray(at)]) };
    case 3: return { what: `byte ${at} deleted`, bytes: Buffer.concat([bytes.subarray(0, at), bytes.subarray(at + 1)]) };
    default: {
      const huge = Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]);
      return { what: `huge varint at ${at}`, bytes: Buffer.concat([bytes.subarray(0, at), huge, bytes.subarray(at + 1)]) };
    }
  }
}

function corpus(): Case[] {
  const cases: Case[] = [];
  const next = seededRandom(20261125);
  for (const [base, bytes] of bases) {
    for (let i = 0; i < MUTATIONS_PER_MODEL; i++) {
      const { what, bytes: mutated } = mutate(bytes, next);
      cases.push({ name: `${base}: ${what}`, write: file(`${base}-m${i}.onnx`, mutated) });
    }
    for (const fraction of [0.1, 0.33, 0.5, 0.75, 0.97]) {
      const at = Math.floor(bytes.length * fraction);
      cases.push({ name: `${base}: truncated at ${at}`, write: file(`${base}-t${at}.onnx`, bytes.subarray(0, at)) });
    }
    // a length prefix that claims far more than the file holds
    cases.push({ name: `${base}: graph length 2^62`, write: file(`${base}-len.onnx`, Buffer.concat([Buffer.from([0x3a, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x40]), bytes])) });
  }
  const relu = (initializer: Parameters<typeof tensorProto>[0], shape: (number | string)[] = [1]) => bytesOf({
    graph: { name: 'g', nodes: [{ op: 'Relu', inputs: [initializer.name], outputs: ['y'] }], initializers: [initializer], inputs: [], outputs: [valueInfoProto('y', DataType.FLOAT, shape)] },
  });
  cases.push(
    { name: 'a million dims', write: file('dims.onnx', manyDims(1_000_000)) },
    { name: '1025 dims', write: file('dims1025.onnx', manyDims(1025)) },
    { name: 'dims [2^40, 2^40]', write: file('huge-dims.onnx', relu({ name: 'w', dataType: DataType.FLOAT, dims: [2 ** 40, 2 ** 40], raw: Buffer.alloc(4) })) },
    { name: 'negative dims', write: file('neg-dims.onnx', relu({ name: 'w', dataType: DataType.FLOAT, dims: [-1, 4], raw: Buffer.alloc(16) })) },
    { name: 'a shape of 2,000 dims', write: file('shape.onnx', relu({ name: 'w', dataType: DataType.FLOAT, dims: [1], raw: Buffer.alloc(4) }, Array<number>(2000).fill(1))) },
    { name: 'If-subgraphs 3,000 deep', write: file('deep-if.onnx', nestedIf(3000)) },
    { name: 'If-subgraphs 65 deep', write: file('deep-if65.onnx', nestedIf(65)) },
    { name: 'sequence types 3,000 deep', write: file('deep-seq.onnx', nestedSequence(3000)) },
    { name: 'a two-node cycle', write: file('cycle.onnx', bytesOf({ graph: { name: 'g', nodes: [{ op: 'Relu', inputs: ['b'], outputs: ['a'] }, { op: 'Relu', inputs: ['a'], outputs: ['b'] }], initializers: [], inputs: [], outputs: [valueInfoProto('a', DataType.FLOAT, [1])] } })) },
    { name: 'a node that feeds itself', write: file('self.onnx', bytesOf({ graph: { name: 'g', nodes: [{ op: 'Add', inputs: ['x', 'y'], outputs: ['y'] }], initializers: [], inputs: [valueInfoProto('x', DataType.FLOAT, [1])], outputs: [valueInfoProto('y', DataType.FLOAT, [1])] } })) },
    { name: 'random bytes', write: file('random.onnx', Buffer.from(Array.from({ length: 4096 }, () => Math.floor(next() * 256)))) },
    { name: 'a field number 0', write: file('zero.onnx', Buffer.from([0x02, 0x00])) },
    { name: 'wire type 7', write: file('wire7.onnx', Buffer.from([0x0f, 0x00])) },
    { name: 'a graph field that is a varint', write: file('graph-varint.onnx', new ProtoWriter().varint(1, 8).varint(7, 5).message(8, new ProtoWriter().varint(2, 17)).toBuffer()) },
    { name: '100,000 empty nodes', write: file('nodes.onnx', new ProtoWriter().varint(1, 8).bytes(7, Buffer.alloc(200_000, Buffer.from([0x0a, 0x00]))).message(8, new ProtoWriter().varint(2, 17)).toBuffer()) },
  );
  // external data: every way out of the model's folder, and every file that is not one
  const external = (name: string, location: string, prepare: (dir: string, outside: string) => void, options: Parameters<typeof writeExternalMlp>[3] = {}, escapes = false): Case => ({
    name: `external data ${name}`,
    escapes,
    write: (dir, outside) => {
      prepare(dir, outside);
      return writeExternalMlp(dir, `${name.replace(/\W+/g, '-')}.onnx`, location, options);
    },
  });
  const none = () => {};
  cases.push(
    external('climbing out with ../', '../outside/secret.bin', none, {}, true),
    external('climbing out deep', 'a/../../../outside/secret.bin', none, {}, true),
    external('at an absolute path', '/etc/hostname', none, {}, true),
    external('that is a symlink out', 'w.bin', (dir, outside) => symlinkSync(join(outside, 'secret.bin'), join(dir, 'w.bin')), {}, true),
    external('in a symlinked folder', 'data/secret.bin', (dir, outside) => symlinkSync(outside, join(dir, 'data')), {}, true),
    external('behind two symlinks', 'w.bin', (dir, outside) => {
      symlinkSync(join(outside, 'secret.bin'), join(dir, 'hop.bin'));
      symlinkSync('hop.bin', join(dir, 'w.bin'));
    }, {}, true),
    external('that is a symlink loop', 'w.bin', (dir) => {
      symlinkSync('w2.bin', join(dir, 'w.bin'));
      symlinkSync('w.bin', join(dir, 'w2.bin'));
    }),
    external('that is a FIFO', 'w.bin', (dir) => execFileSync('mkfifo', [join(dir, 'w.bin')])),
    external('that is a folder', 'sub', (dir) => mkdirSync(join(dir, 'sub'))),
    external('at .', '.', none),
    external('with a NUL byte', 'w.bin\0x', (dir) => writeFileSync(join(dir, 'w.bin'), SECRET)),
    external('that is missing', 'nope.bin', none),
    external('at a negative offset', 'w.bin', (dir) => writeFileSync(join(dir, 'w.bin'), SECRET), { offset: -4 }),
    external('at offset 2^60', 'w.bin', (dir) => writeFileSync(join(dir, 'w.bin'), SECRET), { offset: 2 ** 60 }),
    external('at a non-numeric offset', 'w.bin', (dir) => writeFileSync(join(dir, 'w.bin'), SECRET), { offset: '0x10' }),
    external('with a length past the end', 'w.bin', (dir) => writeFileSync(join(dir, 'w.bin'), SECRET), { length: 1 << 30 }),
    external('that is fine (a control)', 'w.bin', (dir) => writeFileSync(join(dir, 'w.bin'), SECRET)),
  );
  return cases;
}

/** Every file under `dir` with its size and mtime: what a case must not change outside the registry. */
function snapshot(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) walk(path);
      else {
        const s = lstatSync(path);
        out.push(`${relative(dir, path)} ${s.size} ${s.mtimeMs}`);
      }
    }
  };
  walk(dir);
  return out.sort();
}

function checkOutcome(name: string, exitCode: number, stdout: string, stderr: string): { status: string } | { error: { code: string; message: string; hint?: string } } {
  expect([0, 7], `${name}: exit ${exitCode}\n${stderr}`).toContain(exitCode);
  expect(stderr, name).not.toMatch(/\n\s+at |Unexpected error|MAAS_INTERNAL/);
  const doc = JSON.parse(stdout);
  if (exitCode === 7) {
    expect(doc.error, name).toMatchObject({ code: 'MAAS_MODEL_INVALID', message: expect.stringMatching(/\w/), hint: expect.stringMatching(/\w/) });
  }
  return doc;
}

describe('maas register on malformed ONNX files', () => {
  const cases = corpus();

  it(`has at least 100 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(100);
  });

  it('exits 0 or 7 with a message on every one, in bounded time, reading and writing nothing outside', async () => {
    const reg = await makeRegistry();
    const outside = join(reg.home, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.bin'), SECRET);
    const before = { outside: snapshot(outside) };
    const outcomes: Record<string, number> = { 0: 0, 7: 0 };
    for (const [i, c] of cases.entries()) {
      const dir = join(reg.work, `case-${i}`);
      mkdirSync(dir);
      const path = c.write(dir, outside);
      const inputs = snapshot(dir);
      const timer = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`${c.name}: no answer in ${CASE_TIMEOUT_MS} ms`)), CASE_TIMEOUT_MS).unref());
      const started = performance.now();
      const r = await Promise.race([reg.cli('register', path, '--name', `case-${i}`, '--no-load-check', '--json'), timer]);
      if (process.env.MAAS_FUZZ_TIMES) console.log(`${Math.round(performance.now() - started)} ms exit ${r.exitCode} ${c.name}`);
      checkOutcome(c.name, r.exitCode, r.stdout, r.stderr);
      if (c.escapes) expect(r.exitCode, `${c.name} was accepted`).toBe(7);
      outcomes[r.exitCode]!++;
      expect(snapshot(dir), `${c.name} changed its own folder`).toEqual(inputs);
    }
    expect(snapshot(outside)).toEqual(before.outside);
    // the registry never took in the outside file's bytes, only the control case's own copy
    const blobs = join(reg.dir, 'blobs/sha256');
    const secretCopies = readdirSync(blobs).filter((f) => readFileSync(join(blobs, f)).equals(SECRET));
    expect(secretCopies.length).toBeLessThanOrEqual(1);
    const control = cases.findIndex((c) => c.name.includes('a control'));
    const shown = await reg.cli('show', `case-${control}`, '--json');
    expect(shown.exitCode).toBe(0);
    expect(outcomes[7]).toBeGreaterThan(outcomes[0]!);
    const verify = await reg.cli('verify', '--json');
    expect(verify.exitCode, verify.stdout).toBe(0);
  }, 120_000);

  it('a sample through the spawned CLI with the load check: exit 0 or 7, never a hang', async () => {
    const reg = await makeRegistry();
    const outside = join(reg.home, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.bin'), SECRET);
    // each one starts an onnxruntime child: the escapes, the non-files, and a spread of the rest
    const sample = cases.filter((c, i) => c.escapes || /FIFO|a folder|two-node cycle|If-subgraphs 3,000|a million dims/.test(c.name) || i % 37 === 0);
    for (const [i, c] of sample.entries()) {
      const dir = join(reg.work, `sample-${i}`);
      mkdirSync(dir);
      const path = c.write(dir, outside);
      const r = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) => {
        const child = spawn(process.execPath, [BIN, 'register', path, '--name', `sample-${i}`, '--json'], { cwd: reg.dir, env: reg.env });
        let stdout = '';
        let stderr = '';
        child.stdout.on('data', (d) => (stdout += d));
        child.stderr.on('data', (d) => (stderr += d));
        const timer = setTimeout(() => child.kill('SIGKILL'), CASE_TIMEOUT_MS);
        child.on('close', (code) => {
          clearTimeout(timer);
          resolve({ code, stdout, stderr });
        });
      });
      expect(r.code, `${c.name}: killed after ${CASE_TIMEOUT_MS} ms, or exit ${r.code}`).not.toBeNull();
      checkOutcome(c.name, r.code!, r.stdout, r.stderr);
      if (c.escapes) expect(r.code, `${c.name} was accepted`).toBe(7);
    }
  }, 180_000);
});
