// Preload (`node --import`) that fails the Nth filesystem write of this process with an errno,
// as a full disk (ENOSPC) or a dying one (EIO) would. Counted operations: opening a file for
// writing, writing, fsync, rename, copy and link, sync or promise-based.
//   MAAS_FAULT_AT=N          which operation fails (0: none, only count)
//   MAAS_FAULT_ERRNO=ENOSPC  the error it fails with
//   MAAS_FAULT_COUNT_FILE=F  where the number of operations seen is written at exit
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { constants as os } from 'node:os';

//   MAAS_FAULT_AT=all        every operation fails: a read-only file system (with EROFS)
const failAll = process.env.MAAS_FAULT_AT === 'all';
const failAt = failAll ? 0 : Number(process.env.MAAS_FAULT_AT ?? 0);
const code = process.env.MAAS_FAULT_ERRNO ?? 'ENOSPC';
let seen = 0;
const writeUncounted = fs.writeFileSync.bind(fs);

function count(syscall, path) {
  seen++;
  if (!failAll && seen !== failAt) return;
  const error = new Error(`${code}: injected fault, ${syscall} '${path}'`);
  throw Object.assign(error, { code, errno: -os.errno[code], syscall, path: String(path) });
}

const writeFlags = fs.constants.O_WRONLY | fs.constants.O_RDWR | fs.constants.O_CREAT | fs.constants.O_APPEND;
const writes = (flags) => (typeof flags === 'number' ? (flags & writeFlags) !== 0 : typeof flags === 'string' && /[wa+]/.test(flags));

function wrapSync(name, describe) {
  const original = fs[name];
  fs[name] = function (...args) {
    const path = describe(...args);
    if (path !== undefined) count(name, path);
    return original.apply(this, args);
  };
}
wrapSync('openSync', (path, flags) => (writes(flags) ? path : undefined));
wrapSync('writeSync', (fd) => `fd ${fd}`);
wrapSync('writeFileSync', (path) => path);
wrapSync('appendFileSync', (path) => path);
wrapSync('fsyncSync', (fd) => `fd ${fd}`);
wrapSync('renameSync', (_from, to) => to);
wrapSync('copyFileSync', (_from, to) => to);
wrapSync('linkSync', (_from, to) => to);

function wrapAsync(target, name, describe) {
  const original = target[name];
  target[name] = async function (...args) {
    const path = describe.apply(this, args);
    if (path !== undefined) count(name, path);
    return original.apply(this, args);
  };
}
wrapAsync(fsp, 'open', (path, flags) => (writes(flags) ? path : undefined));
wrapAsync(fsp, 'writeFile', (path) => path);
wrapAsync(fsp, 'appendFile', (path) => path);
wrapAsync(fsp, 'rename', (_from, to) => to);
wrapAsync(fsp, 'copyFile', (_from, to) => to);
const handle = await fsp.open(new URL(import.meta.url), 'r');
const FileHandle = Object.getPrototypeOf(handle);
await handle.close();
wrapAsync(FileHandle, 'write', function () { return `fd ${this.fd}`; });
wrapAsync(FileHandle, 'writeFile', function () { return `fd ${this.fd}`; });
wrapAsync(FileHandle, 'sync', function () { return `fd ${this.fd}`; });
syncBuiltinESMExports();

const countFile = process.env.MAAS_FAULT_COUNT_FILE;
if (countFile) process.on('exit', () => writeUncounted(countFile, String(seen)));
