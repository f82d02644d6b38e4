/**
 * `volmo <command>`: serve (default), sandbox, demo, model, eval, bench, store, doctor. Each sub-command loads
 * configuration once, validates it, and reports problems plainly. `serve` picks the composition root: the
 * service alone (src/main.ts) or the sandbox's (src/sandbox/service.ts), which starts the sandbox first.
 */
import './platform/no-telemetry.js'; // first: onnxruntime telemetry off before anything can load it
import { loadConfig, type Config } from './config.js';
import { isAppError } from './errors.js';
import { createLogger } from './log.js';

const USAGE = `usage: volmo <command> [options]

commands:
  serve                 start the service (with the local EHR sandbox unless VOLMO_SANDBOX=false)
  worker                serve the model to other hosts (POST /v1/chat/completions, /v1/volmo/exam; docs/deployment.md)
  sandbox               start only the local EHR sandbox (FHIR, SMART auth, Orthanc, fixtures)
  demo [patient]        start the service with the sandbox, send a signed order-sign call, print the cards
  model tiny <out>      write a tiny random-weight VOLMO-shaped snapshot (tests)
  model build <snapshot> <out> [--dtype fp32|fp16|int4] [--external-data]
  model bench-snapshot <out> --layers N
  eval <dataset> [--layout csv|idrid|octdl] [--out DIR] [--model DIR]
                        validate the model on a site's labelled images (volmo eval --help)
  bench                 run the benchmarks and print tables
  doctor                check configuration, system packages and model files
  store rotate-key --new-key-file <path>
                        re-seal the stored data under a new data key (stop the service first; docs/deployment.md)
  store backup <file>   online copy of a SQLite store (PostgreSQL: pg_dump); the data key is not in it
  help                  this text

configuration: environment variables VOLMO_* (see docs/configuration.md)`;

function config(): Config {
  return loadConfig(process.env);
}

async function waitForSignal(): Promise<string> {
  return new Promise((resolve) => {
    const on = (sig: string) => resolve(sig);
    process.once('SIGINT', on);
    process.once('SIGTERM', on);
  });
}

export async function main(argv: string[]): Promise<number> {
  const [command = 'serve', ...rest] = argv;
  try {
    switch (command) {
      case 'serve': {
        const cfg = config();
        const log = createLogger({ level: cfg.logLevel });
        // The sandbox settings and code load only when asked for: the service alone never imports src/sandbox.
        const { loadSandboxSettings } = await import('./sandbox/settings.js');
        const settings = loadSandboxSettings(process.env, cfg.profile);
        const svc = settings.sandbox
          ? await (await import('./sandbox/service.js')).startServiceWithSandbox(cfg, settings, log)
          : await (await import('./main.js')).startService(cfg, log);
        const sig = await waitForSignal();
        log.info({ signal: sig }, 'signal received');
        await svc.close();
        return 0;
      }
      case 'worker': {
        const cfg = config();
        const log = createLogger({ level: cfg.logLevel });
        const { startWorker } = await import('./worker/start.js');
        const worker = await startWorker(cfg, log);
        const sig = await waitForSignal();
        log.info({ signal: sig }, 'signal received');
        await worker.close();
        return 0;
      }
      case 'sandbox': {
        const cfg = config();
        const log = createLogger({ level: cfg.logLevel });
        const { loadSandboxSettings } = await import('./sandbox/settings.js');
        const { startSandbox } = await import('./sandbox/index.js');
        const sb = await startSandbox({ settings: loadSandboxSettings(process.env, cfg.profile), publicUrl: cfg.publicUrl, log });
        await waitForSignal();
        await sb.stop();
        return 0;
      }
      case 'demo': {
        const { runDemo } = await import('./sandbox/demo.js');
        return await runDemo(rest);
      }
      case 'model': {
        const { runModelCli } = await import('./model/cli.js');
        return await runModelCli(rest, { logLevel: config().logLevel });
      }
      case 'eval': {
        const { runEvalCli } = await import('./eval/cli.js');
        return await runEvalCli(rest);
      }
      case 'bench': {
        const { runBench } = await import('../bench/index.js');
        return await runBench(rest);
      }
      case 'store': {
        const cfg = config();
        const { runStoreCli } = await import('./store/cli.js');
        return await runStoreCli(rest, cfg, createLogger({ level: cfg.logLevel }));
      }
      case 'doctor': {
        const { runDoctor } = await import('./doctor.js');
        return await runDoctor();
      }
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return 0;
      default:
        console.error(`unknown command: ${command}\n\n${USAGE}`);
        return 2;
    }
  } catch (e) {
    if (isAppError(e) && e.code === 'config_invalid') {
      console.error(e.message);
      return 78; // EX_CONFIG
    }
    console.error(e instanceof Error ? e.message : String(e));
    return 1;
  }
}
