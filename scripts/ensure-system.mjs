#!/usr/bin/env node
// Run by `npm test`: makes sure the Debian packages the tests use are present — orthanc + orthanc-dicomweb
// (the sandbox PACS), chromium (browser tests), strace (native network trace) and, on bookworm, Mesa >= 25 (software Vulkan from
// bookworm-backports) so the WebGPU execution provider runs. Installs the missing ones with apt-get when
// running as root (VOLMO_NO_APT=1: never install); otherwise prints the command and fails, unless
// VOLMO_NO_PACS=1. Prints `webgpu=ready` when the software-Vulkan driver is installed.
// (`npm start` installs nothing: without Orthanc the sandbox serves images as FHIR attachments.)
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';

const onPath = (bin) => spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
const dpkgVersion = (pkg) => {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status} ${Version}', pkg], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.startsWith('install ok installed') ? r.stdout.split(' ').pop() : null;
};
const codename = (() => {
  try {
    return /^VERSION_CODENAME=(\w+)/m.exec(readFileSync('/etc/os-release', 'utf8'))?.[1] ?? null;
  } catch {
    return null;
  }
})();
// Debian versions may carry an epoch ("1:25.0.7-2"): the upstream major comes after it.
const mesaOk = () => Number.parseInt((dpkgVersion('mesa-vulkan-drivers') ?? '0').replace(/^\d+:/, ''), 10) >= 25 && dpkgVersion('libvulkan1') !== null;

const wanted = [
  { pkg: 'orthanc', present: () => onPath('Orthanc') },
  { pkg: 'orthanc-dicomweb', present: () => existsSync('/usr/share/orthanc/plugins/libOrthancDicomWeb.so') },
  { pkg: 'chromium', present: () => existsSync('/usr/bin/chromium') },
  // the no-telemetry test traces the model process's native network calls (test/privacy/no-telemetry.test.ts)
  { pkg: 'strace', present: () => onPath('strace') },
];
const missing = wanted.filter((w) => !w.present()).map((w) => w.pkg);
const wantMesa = codename === 'bookworm' && !mesaOk();

const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
const canApt = isRoot && onPath('apt-get') && process.env.VOLMO_NO_APT !== '1';
const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };

if ((missing.length || wantMesa) && !canApt) {
  if (missing.length) console.error(`[volmo] missing system packages: ${missing.join(', ')} — install with: sudo apt-get install -y ${missing.join(' ')}`);
  if (wantMesa) console.error('[volmo] WebGPU tests need Mesa >= 25 from bookworm-backports: apt-get install -t bookworm-backports mesa-vulkan-drivers libvulkan1');
  if (missing.length && process.env.VOLMO_NO_PACS !== '1') process.exit(1);
} else {
  if (wantMesa) enableBackports();
  if (missing.length || wantMesa) {
    console.error(`[volmo] installing Debian packages: ${[...missing, ...(wantMesa ? ['mesa-vulkan-drivers libvulkan1 (bookworm-backports)'] : [])].join(', ')}`);
    execFileSync('apt-get', ['update'], { stdio: 'inherit', env });
    if (missing.length) execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...missing], { stdio: 'inherit', env });
    if (wantMesa) execFileSync('apt-get', ['install', '-y', '--no-install-recommends', '-t', 'bookworm-backports', 'mesa-vulkan-drivers', 'libvulkan1'], { stdio: 'inherit', env });
  }
}
if (mesaOk()) console.log('webgpu=ready');

/** Adds the backports suite with the same mirror and key as the machine's main Debian entry (no host name is hard-coded). */
function enableBackports() {
  const target = '/etc/apt/sources.list.d/volmo-backports.sources';
  if (existsSync(target)) return;
  const deb822 = '/etc/apt/sources.list.d/debian.sources';
  if (existsSync(deb822)) {
    const stanza = readFileSync(deb822, 'utf8')
      .split(/\n\s*\n/)
      .find((s) => /^Suites:.*\bbookworm\b/m.test(s) && !/security/.test(s));
    if (stanza) {
      writeFileSync(target, `${stanza.replace(/^Suites:.*$/m, 'Suites: bookworm-backports').trim()}\n`);
      return;
    }
  }
  const list = existsSync('/etc/apt/sources.list') ? readFileSync('/etc/apt/sources.list', 'utf8') : '';
  const line = list.split('\n').find((l) => /^deb\s+\S+\s+bookworm\s/.test(l));
  if (!line) throw new Error('cannot find the main Debian apt source to derive bookworm-backports from');
  writeFileSync(target.replace(/\.sources$/, '.list'), `${line.replace(/\sbookworm\s/, ' bookworm-backports ')}\n`);
}
