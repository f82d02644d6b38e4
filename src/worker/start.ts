/**
 * `volmo worker`'s composition root: the in-process runtime on VOLMO_MODEL_DIR served over HTTP
 * (src/worker/server.ts) on VOLMO_WORKER_HOST:VOLMO_WORKER_PORT.
 */
import type { Config } from '../config.js';
import { AppError } from '../errors.js';
import type { Logger } from '../log.js';
import { localEngine } from '../model-engine.js';
import { isLoopbackHost, startWorkerServer, type RunningWorker } from './server.js';

export async function startWorker(config: Config, log: Logger): Promise<RunningWorker> {
  if (!config.modelDir) throw new AppError('config_invalid', 'invalid configuration:\n  - VOLMO_MODEL_DIR: volmo worker needs a built model directory');
  if (!config.workerToken && !isLoopbackHost(config.workerHost)) {
    throw new AppError('config_invalid', `invalid configuration:\n  - VOLMO_WORKER_TOKEN: required when the worker listens beyond loopback (VOLMO_WORKER_HOST=${config.workerHost})`);
  }
  const engine = await localEngine({ ...config, modelDir: config.modelDir }, log);
  try {
    const server = await startWorkerServer(
      {
        host: config.workerHost,
        port: config.workerPort,
        token: config.workerToken,
        limits: { maxBytes: config.workerBodyLimit, maxDepth: config.requestJsonMaxDepth, maxNodes: config.requestJsonMaxNodes },
        shutdownGraceMs: config.shutdownGraceMs,
      },
      engine,
      log,
    );
    return {
      url: server.url,
      close: async () => {
        await server.close();
        await engine.close();
      },
    };
  } catch (e) {
    await engine.close();
    throw e;
  }
}
