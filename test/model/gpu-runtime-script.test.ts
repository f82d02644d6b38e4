/**
 * bench/gpu-runtime.sh without a GPU: argument checks and, in --dry-run, the loader/driver decisions it would
 * take on a fresh host (fake `ldconfig` and `nvidia-smi` on PATH, manifests in temp folders). Nothing is
 * unpacked and the bench is not started.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';

const root = mkdtempSync(join(tmpdir(), 'volmo-gpu-sh-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

function fakeBin(name: string, script: string): string {
  const dir = join(root, `bin-${name}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(dir);
  writeFileSync(join(dir, name), `#!/bin/sh\n${script}\n`);
  chmodSync(join(dir, name), 0o755);
  return dir;
}

interface Host {
  vulkanInstalled: boolean;
  debs: string[];
  icdInStandardDir: boolean;
  nvidiaIcd: boolean;
}

function runScript(args: string[], host: Host) {
  const glDir = join(root, `gl-${Math.random().toString(36).slice(2)}`);
  mkdirSync(glDir);
  for (const d of host.debs) writeFileSync(join(glDir, d), 'not really a deb');
  const icdDir = join(root, `icd-${Math.random().toString(36).slice(2)}`);
  mkdirSync(icdDir);
  if (host.icdInStandardDir) writeFileSync(join(icdDir, 'lvp_icd.json'), '{}');
  const nvidiaIcd = join(root, 'nvidia_icd.json');
  if (host.nvidiaIcd) writeFileSync(nvidiaIcd, '{}');
  const ldconfig = fakeBin('ldconfig', host.vulkanInstalled ? "echo '\tlibvulkan.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libvulkan.so.1'" : 'exit 0');
  const smi = fakeBin('nvidia-smi', "echo 'NVIDIA H200, 570.00, 143771 MiB'");
  const env = {
    ...process.env,
    PATH: `${ldconfig}:${smi}:${process.env.PATH}`,
    GL_DIR: glDir,
    VK_ICD_DIRS: icdDir,
    NVIDIA_ICD_FILES: `${join(root, 'absent.json')} ${host.nvidiaIcd ? nvidiaIcd : join(root, 'absent2.json')}`,
    NVIDIA_EGL_FILES: join(root, 'no-egl.json'),
  };
  const r = spawnSync('sh', ['bench/gpu-runtime.sh', ...args], { env, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr, glDir };
}

const FRESH: Host = { vulkanInstalled: false, debs: ['libvulkan1_1.3.239.0-1_amd64.deb', 'libegl1_1.6.0-1_amd64.deb'], icdInStandardDir: false, nvidiaIcd: true };

describe('bench/gpu-runtime.sh', () => {
  it('on a fresh host (no loader, no driver manifest) unpacks the carried packages and points VK_DRIVER_FILES at the NVIDIA ICD', () => {
    const r = runScript(['--dry-run'], FRESH);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(r.out).toContain(`would run: dpkg -x ${r.glDir}/libegl1_1.6.0-1_amd64.deb /`);
    expect(r.out).toContain(`would run: dpkg -x ${r.glDir}/libvulkan1_1.3.239.0-1_amd64.deb /`);
    expect(r.out).toContain('would run: ldconfig');
    expect(r.out).toMatch(/would export: VK_DRIVER_FILES=.*nvidia_icd\.json/);
    expect(r.out).toContain('# GPU: NVIDIA H200, 570.00, 143771 MiB');
    expect(r.out).toMatch(/would run: timeout 480 node bin\/volmo\.js bench runtime --ep=webgpu --full --dtype=fp16 --parts=vision,decode,exam .*--baseline=none/);
  });

  it('leaves a host with a loader and a driver manifest alone, and passes --layers/--dtype and extra options on', () => {
    const r = runScript(['--dry-run', '--layers=2', '--dtype=fp32', '--contexts=256'], { ...FRESH, vulkanInstalled: true, icdInStandardDir: true });
    expect(r.code).toBe(0);
    expect(r.out).toContain('vulkan loader: present');
    expect(r.out).not.toContain('dpkg');
    expect(r.out).not.toContain('VK_DRIVER_FILES');
    expect(r.out).toMatch(/bench runtime --ep=webgpu --layers=2 --dtype=fp32 .* --contexts=256$/m);
  });

  it('stops with a clear error when the loader is missing and no packages were brought', () => {
    const r = runScript(['--dry-run'], { ...FRESH, debs: [] });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/libvulkan\.so\.1 is not installed and .* holds no loader packages/);
    expect(r.err).toContain('apt-get download libvulkan1');
  });

  it('stops when no Vulkan driver manifest exists anywhere (WebGPU would fall back to CPU)', () => {
    const r = runScript(['--dry-run'], { ...FRESH, nvidiaIcd: false });
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/no Vulkan driver manifest/);
  });

  it('refuses bad arguments with exit 2', () => {
    expect(runScript(['--dry-run', '--layers=abc'], FRESH)).toMatchObject({ code: 2, err: expect.stringMatching(/--layers must be a number/) });
    expect(runScript(['--dry-run', '--layers=30'], FRESH)).toMatchObject({ code: 2, err: expect.stringMatching(/1\.\.24/) });
    expect(runScript(['--dry-run', '--dtype=int8'], FRESH)).toMatchObject({ code: 2, err: expect.stringMatching(/--dtype must be fp16, fp32 or int4/) });
  });
});
