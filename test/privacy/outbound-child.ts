/**
 * The child process of no-telemetry.test.ts, run under net-trace.ts (and strace where available):
 *   model <modelDir> <holdMs>    the product path: the inference engine (worker thread, real onnxruntime)
 *                                loads the model, generates, and stays loaded for holdMs
 *   raw-ort <modelDir> <holdMs>  control: onnxruntime-node opened directly, WITHOUT the telemetry switch
 *   canary                       deliberate outbound attempts the tracers must catch (nothing leaves)
 * Prints one JSON line with what it did.
 */
import { execFileSync } from 'node:child_process';
import dgram from 'node:dgram';
import { lookup } from 'node:dns';
import net from 'node:net';
import { join } from 'node:path';

const [mode, modelDir, holdArg] = process.argv.slice(2);
const hold = () => new Promise((r) => setTimeout(r, Number(holdArg ?? 0)));
const CANARY_HOST = 'telemetry-canary.example.com';

async function attempt(fn: () => unknown): Promise<string> {
  try {
    await fn();
    return 'not refused';
  } catch (e) {
    return (e as Error).name;
  }
}

async function main(): Promise<unknown> {
  if (mode === 'model') {
    const { createEngine } = await import('../../src/model/runtime/engine.js');
    const { silentLogger } = await import('../../src/log.js');
    const engine = await createEngine({ modelDir, log: silentLogger(), workers: 1 });
    const answer = await engine.generate({ images: [], prompt: 'Describe the fundus.', maxNewTokens: 4 });
    await hold();
    await engine.close();
    return { mode, tokens: answer.tokenIds?.length ?? 0, random: engine.info.random };
  }
  if (mode === 'raw-ort') {
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(join(modelDir, 'vision.onnx'));
    await hold();
    await session.release();
    return { mode, inputs: session.inputNames };
  }
  if (mode === 'canary') {
    const results = {
      lookup: await attempt(() => new Promise((res, rej) => lookup(CANARY_HOST, (e) => (e ? rej(e) : res(null))))),
      tcp: await attempt(() => net.connect(443, '192.0.2.10').destroy()),
      udp: await attempt(() => dgram.createSocket('udp4').send('x', 9, '192.0.2.10')),
      // Native resolver, bypassing Node: only the strace layer can see it, and strace refuses its sends.
      native: process.env.VOLMO_NATIVE_CANARY === '1' ? await attempt(() => execFileSync('getent', ['hosts', CANARY_HOST], { stdio: 'ignore' })) : 'skipped',
    };
    return { mode, results };
  }
  throw new Error(`unknown mode ${mode}`);
}

process.stdout.write(`${JSON.stringify(await main())}\n`);
