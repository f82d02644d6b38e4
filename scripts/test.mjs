#!/usr/bin/env node
// `npm test`: system packages, typecheck, then the whole vitest suite (which starts its own servers:
// FHIR, SMART authorization, Orthanc, the EHR simulator — all on loopback).
import { spawnSync } from 'node:child_process';

function run(cmd, args) {
  console.log(`\n[volmo test] ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

run(process.execPath, ['scripts/ensure-system.mjs', 'test']);
run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--noEmit']);
run(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...process.argv.slice(2)]);
