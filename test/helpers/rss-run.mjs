// Runs the built CLI in this process and reports its peak resident memory on stderr.
const [cliUrl, ...argv] = process.argv.slice(2);
const { run } = await import(cliUrl);
const code = await run(argv);
process.stderr.write(`\nMAXRSS_KB=${process.resourceUsage().maxRSS}\n`);
process.exitCode = code;
