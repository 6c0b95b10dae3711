/** Every command, in the order `maas --help` lists them. Specs are light; work is imported lazily. */
import type { CommandSpec } from '../core/define-command.js';
import { benchCommand } from './bench.js';
import { convertCommand } from './convert.js';
import { demoCommand } from './demo.js';
import { deployCommand } from './deploy.js';
import { diffCommand } from './diff.js';
import { doctorCommand } from './doctor.js';
import { exportCommand } from './export.js';
import { gcCommand } from './gc.js';
import { importCommand } from './import.js';
import { initCommand } from './init.js';
import { keygenCommand } from './keygen.js';
import { listCommand } from './list.js';
import { loginCommand } from './login.js';
import { packCommand } from './pack.js';
import { predictCommand } from './predict.js';
import { psCommand } from './ps.js';
import { pullCommand } from './pull.js';
import { pushCommand } from './push.js';
import { registerCommand } from './register.js';
import { remoteCommand } from './remote.js';
import { rmCommand } from './rm.js';
import { sbomCommand } from './sbom.js';
import { serveCommand } from './serve.js';
import { showCommand } from './show.js';
import { signCommand } from './sign.js';
import { tagCommand } from './tag.js';
import { undeployCommand } from './undeploy.js';
import { verifyCommand } from './verify.js';

// Each spec's option table has its own type; cli.ts builds them all alike.
export const commands: CommandSpec<any, any>[] = [
  initCommand,
  registerCommand,
  listCommand,
  showCommand,
  diffCommand,
  tagCommand,
  verifyCommand,
  rmCommand,
  gcCommand,
  convertCommand,
  serveCommand,
  deployCommand,
  undeployCommand,
  psCommand,
  keygenCommand,
  signCommand,
  sbomCommand,
  pushCommand,
  pullCommand,
  packCommand,
  importCommand,
  exportCommand,
  loginCommand,
  remoteCommand,
  predictCommand,
  benchCommand,
  doctorCommand,
  demoCommand,
];
