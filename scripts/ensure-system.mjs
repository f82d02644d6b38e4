#!/usr/bin/env node
// Makes sure the Debian packages the sandbox and the tests use are present:
//   orthanc + orthanc-dicomweb (the sandbox PACS), chromium (SMART app browser tests).
// Installs the missing ones with apt-get when running as root on Debian (set VOLMO_NO_APT=1 to never
// install); otherwise prints the command to run. Usage: ensure-system.mjs start|test
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';

const purpose = process.argv[2] ?? 'start';
const wanted = [
  { pkg: 'orthanc', present: () => onPath('Orthanc') },
  { pkg: 'orthanc-dicomweb', present: () => existsSync('/usr/share/orthanc/plugins/libOrthancDicomWeb.so') },
];
if (purpose === 'test') wanted.push({ pkg: 'chromium', present: () => existsSync('/usr/bin/chromium') });

function onPath(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

const missing = wanted.filter((w) => !w.present()).map((w) => w.pkg);
if (missing.length === 0) process.exit(0);

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const canApt = isRoot && onPath('apt-get') && process.env.VOLMO_NO_APT !== '1';
if (!canApt) {
  const cmd = `apt-get update && apt-get install -y ${missing.join(' ')}`;
  console.error(`[volmo] missing system packages: ${missing.join(', ')} — install them with: sudo sh -c '${cmd}'`);
  // Starting works without them (the sandbox then serves images as FHIR attachments); the tests need them.
  process.exit(purpose === 'test' && process.env.VOLMO_NO_PACS !== '1' ? 1 : 0);
}
console.error(`[volmo] installing Debian packages: ${missing.join(', ')}`);
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
