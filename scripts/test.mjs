#!/usr/bin/env node
// `npm test`: system packages, typecheck, then the whole vitest suite (which starts its own servers:
// FHIR, SMART authorization, Orthanc, the EHR simulator — all on loopback). In CI (CI=true) or with
// VOLMO_TEST_NODE22=1 the suite runs a second time on Node 22 LTS, fetched from the npm registry with
// npx, because most sites run 22 or 24 while these machines run 20.
import { spawnSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

function run(cmd, args) {
  console.log(`\n[volmo test] ${cmd} ${args.join(' ')}`);
  const r = spawnSync(cmd, args, { stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

const vitestArgs = ['node_modules/vitest/vitest.mjs', 'run', ...process.argv.slice(2)];
const system = spawnSync(process.execPath, ['scripts/ensure-system.mjs'], { stdio: ['inherit', 'pipe', 'inherit'], encoding: 'utf8' });
process.stdout.write(system.stdout ?? '');
if (system.status !== 0) process.exit(system.status ?? 1);
// With the software-Vulkan driver installed, the WebGPU parity test must run, not skip.
if (/^webgpu=ready$/m.test(system.stdout ?? '')) process.env.VOLMO_REQUIRE_WEBGPU ??= '1';
run(process.execPath, ['node_modules/typescript/bin/tsc', '-p', 'tsconfig.json', '--noEmit']);
run(process.execPath, vitestArgs);

const node22 = process.env.VOLMO_TEST_NODE22 ?? (process.env.CI === 'true' ? '1' : '0');
if (node22 === '1' && !process.version.startsWith('v22.')) {
  // better-sqlite3 is a native addon built for one Node ABI: rebuild it for Node 22, run the suite, then
  // rebuild it for this Node whatever happened. Its headers come from the npm registry (node-<platform>-<arch>
  // is Node's own distribution, include/node among it): node-gyp would download them from nodejs.org.
  const npx22 = (args, env = process.env) => spawnSync('npx', ['-y', '-p', 'node@22', '--', ...args], { stdio: 'inherit', env });
  const version = spawnSync('npx', ['-y', '-p', 'node@22', '--', 'node', '-p', 'process.versions.node'], { encoding: 'utf8' }).stdout.trim();
  const headers = mkdtempSync(join(tmpdir(), 'volmo-node22-'));
  run('npm', ['pack', '--silent', '--pack-destination', headers, `node-${process.platform}-${process.arch}@${version}`]);
  run('tar', ['xzf', join(headers, `node-${process.platform}-${process.arch}-${version}.tgz`), '-C', headers, 'package/include']);
  const nodedir = join(headers, 'package');
  console.log(`\n[volmo test] better-sqlite3 for Node ${version}`);
  let status = npx22(['npm', 'rebuild', 'better-sqlite3'], { ...process.env, npm_config_nodedir: nodedir }).status;
  if (status === 0) {
    console.log(`\n[volmo test] Node 22: node ${vitestArgs.join(' ')}`);
    status = npx22(['node', ...vitestArgs]).status;
  }
  console.log('\n[volmo test] better-sqlite3 back to this Node');
  run('npm', ['rebuild', 'better-sqlite3']);
  if (status !== 0) process.exit(status ?? 1);
}
