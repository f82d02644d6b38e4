/** `volmo worker` as its own process on a loopback port (port 0), resolved once it says where it listens. */
import { spawn, type ChildProcess } from 'node:child_process';

export async function startWorkerProcess(modelDir: string, env: Record<string, string>): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['bin/volmo.js', 'worker'], {
    env: { PATH: process.env.PATH, HOME: process.env.HOME, VOLMO_MODEL_DIR: modelDir, VOLMO_WORKER_PORT: '0', VOLMO_LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start: ${out.slice(-2000)}`)), 90_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"[^\n]*volmo worker listening/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`worker exited ${code}: ${out.slice(-2000)}`));
    });
  });
  return { child, url };
}
