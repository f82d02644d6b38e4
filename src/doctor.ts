/** `volmo doctor`: checks configuration, runtime, system packages and the model directory; prints a table. */
import { existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { loadConfig, type Config } from './config.js';
import { loadSandboxSettings } from './sandbox/settings.js';

interface Check {
  name: string;
  status: 'ok' | 'warn' | 'fail';
  detail: string;
}

function onPath(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

async function checks(): Promise<Check[]> {
  const out: Check[] = [];
  let config: Config | null = null;
  let sandbox = false;
  try {
    config = loadConfig(process.env);
    sandbox = loadSandboxSettings(process.env, config.profile).sandbox;
    out.push({ name: 'configuration', status: 'ok', detail: `profile ${config.profile}, sandbox ${sandbox ? 'on' : 'off'}, public URL ${config.publicUrl}` });
  } catch (e) {
    out.push({ name: 'configuration', status: 'fail', detail: (e as Error).message });
  }
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  out.push({ name: 'node', status: major > 20 || (major === 20 && minor >= 19) ? 'ok' : 'fail', detail: process.version });
  try {
    const ort = await import('onnxruntime-node');
    out.push({ name: 'onnxruntime-node', status: 'ok', detail: `loaded; backends: ${ort.listSupportedBackends?.().map((b) => b.name).join(', ') ?? 'cpu'}` });
  } catch (e) {
    out.push({ name: 'onnxruntime-node', status: 'fail', detail: (e as Error).message });
  }
  try {
    const sharp = (await import('sharp')).default;
    out.push({ name: 'sharp', status: 'ok', detail: `libvips ${sharp.versions.vips}` });
  } catch (e) {
    out.push({ name: 'sharp', status: 'fail', detail: (e as Error).message });
  }
  const orthanc = onPath('Orthanc') && existsSync('/usr/share/orthanc/plugins/libOrthancDicomWeb.so');
  out.push({
    name: 'orthanc (sandbox PACS)',
    status: orthanc ? 'ok' : sandbox ? 'warn' : 'ok',
    detail: orthanc ? 'installed with the DICOMweb plugin' : 'not installed: the sandbox serves images as FHIR attachments (apt-get install -y orthanc orthanc-dicomweb)',
  });
  out.push({ name: 'chromium (browser tests)', status: existsSync('/usr/bin/chromium') ? 'ok' : 'warn', detail: existsSync('/usr/bin/chromium') ? '/usr/bin/chromium' : 'not installed (apt-get install -y chromium)' });
  if (config?.modelDir) {
    const manifest = `${config.modelDir}/manifest.json`;
    out.push({ name: 'model', status: existsSync(manifest) ? 'ok' : 'fail', detail: existsSync(manifest) ? manifest : `no manifest.json in ${config.modelDir} (build one with: volmo model build <snapshot> <out>)` });
  } else {
    out.push({ name: 'model', status: 'warn', detail: 'VOLMO_MODEL_DIR not set: hooks answer without AI findings' });
  }
  return out;
}

export async function runDoctor(): Promise<number> {
  const results = await checks();
  const width = Math.max(...results.map((r) => r.name.length));
  for (const r of results) console.log(`${r.status.toUpperCase().padEnd(4)}  ${r.name.padEnd(width)}  ${r.detail}`);
  return results.some((r) => r.status === 'fail') ? 1 : 0;
}
