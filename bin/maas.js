#!/usr/bin/env node
// Thin launcher: check Node, load the built CLI, exit with its code.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 20 || (major === 20 && minor < 19)) {
  process.stderr.write(`maas needs Node.js 20.19 or newer (this is ${process.version}). Upgrade: https://nodejs.org\n`);
  process.exit(1);
}
// A reader that stops early (`maas list | head`) closes the pipe: that ends the output, not in a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (error) => {
    if (error.code === 'EPIPE') process.exit(0);
    throw error;
  });
}
const { run } = await import('../dist/cli.js');
const code = await run(process.argv.slice(2));
// run() resolves once the command is over (serve: after its shutdown). Whatever is still open
// then (a stray worker, child or socket) must not keep the process alive: flush and exit.
const flushed = (stream) => new Promise((resolve) => stream.write('', resolve));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(code);
