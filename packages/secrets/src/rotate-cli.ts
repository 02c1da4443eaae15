#!/usr/bin/env node
import { runRotate } from './cli.js';

// npm run secrets:rotate -- <purpose> [options]; see cli.ts USAGE.
process.exitCode = await runRotate(process.argv.slice(2), process.env, {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
});
