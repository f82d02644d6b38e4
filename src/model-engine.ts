/** The in-process model runtime as configured (VOLMO_MODEL_DIR, execution provider, workers, time budget): one place for the service and `volmo worker`. */
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { VlmEngine } from './model/runtime/types.js';

export async function localEngine(config: Config & { modelDir: string }, log: Logger): Promise<VlmEngine> {
  const { createEngine } = await import('./model/runtime/engine.js');
  return createEngine({
    modelDir: config.modelDir,
    executionProvider: config.executionProvider,
    workers: config.modelWorkers,
    timeoutMs: config.inferenceTimeoutMs,
    log: log.child({ component: 'model' }),
  });
}
