/**
 * `npm run demo [fixture] [--hook order-sign|order-select|patient-view] [--no-prefetch] [--no-token]`:
 * acts as the EHR. Uses a running `npm start` when there is one (signing with the sandbox EHR's stored key),
 * otherwise starts the service with its sandbox in this process. It obtains a short-lived FHIR token for
 * the call, builds the prefetch the way an EHR does, sends a signed hook call and prints the cards.
 */
import { loadConfig, type Config } from '../config.js';
import { createLogger } from '../log.js';
import type { CdsCard } from '../cds/types.js';
import { startEhrSimulator, type EhrSimulator } from './ehr-simulator.js';
import { ehrToken, fixturePatientId, sandboxHookCall } from './ehr-access.js';
import { listFixturePatients } from './fixtures.js';
import { ehrKeyFile } from './index.js';
import { loadSandboxSettings } from './settings.js';

interface DemoArgs {
  fixture?: string;
  hook: 'order-sign' | 'order-select' | 'patient-view';
  prefetch: boolean;
  token: boolean;
  /** Seconds to keep asking while the analysis runs (as an EHR would on later chart actions); 0: ask once. */
  waitS: number;
}

function parseArgs(args: string[]): DemoArgs {
  const out: DemoArgs = { hook: 'order-sign', prefetch: true, token: true, waitS: 600 };
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--no-prefetch') out.prefetch = false;
    else if (a === '--no-token') out.token = false;
    else if (a === '--hook') out.hook = args[++i] as DemoArgs['hook'];
    else if (a === '--wait') out.waitS = Number(args[++i]);
    else if (!a.startsWith('--')) out.fixture = a;
    else throw new Error(`unknown option ${a}`);
  }
  if (!['order-sign', 'order-select', 'patient-view'].includes(out.hook)) throw new Error(`unknown hook ${out.hook}`);
  if (!Number.isFinite(out.waitS) || out.waitS < 0) throw new Error('--wait takes a number of seconds');
  return out;
}

async function isUp(url: string): Promise<boolean> {
  try {
    return (await fetch(url, { signal: AbortSignal.timeout(1000) })).ok;
  } catch {
    return false;
  }
}

function printCards(cards: CdsCard[]): void {
  if (cards.length === 0) {
    console.log('\n(no cards: no guidance for this call — e.g. no model configured or no usable retinal image; the service never invents findings)');
    return;
  }
  for (const c of cards) {
    console.log(`\n[${c.indicator.toUpperCase()}] ${c.summary}\n  source: ${c.source.label}`);
    if (c.detail) console.log(`  ${c.detail.split('\n').join('\n  ')}`);
    for (const l of c.links ?? []) console.log(`  link (${l.type}): ${l.label} -> ${l.url}`);
  }
}

function isPending(body: unknown): boolean {
  return ((body as { cards?: CdsCard[] }).cards ?? []).some((c) => /\bin progress\b/.test(c.summary));
}

export async function runDemo(argv: string[]): Promise<number> {
  const args = parseArgs(argv);
  const config: Config = loadConfig(process.env);
  const settings = loadSandboxSettings(process.env, config.profile);
  const fixtures = listFixturePatients();
  const fixture = fixtures.find((f) => f.key === (args.fixture ?? 'diabetic'));
  if (!fixture) {
    console.error(`unknown fixture ${args.fixture}; choose one of: ${fixtures.map((f) => f.key).join(', ')}`);
    return 2;
  }
  let running: { close(): Promise<void> } | null = null;
  if (!(await isUp(`${config.publicUrl}/healthz`))) {
    console.log(`no service at ${config.publicUrl}: starting one with the sandbox in this process…`);
    const { startServiceWithSandbox } = await import('./service.js');
    running = await startServiceWithSandbox(config, settings, createLogger({ level: 'warn' }));
  }
  let ehr: EhrSimulator | undefined;
  try {
    ehr = await startEhrSimulator({ alg: 'ES384', port: settings.sandboxEhrPort, keyFile: ehrKeyFile(settings.sandboxStateDir), serveJwks: false });
    const fhirBase = `http://127.0.0.1:${settings.sandboxFhirPort}/fhir/R4`;
    const token = await ehrToken(fhirBase, ehr);
    const patientId = await fixturePatientId(fhirBase, token.access_token, fixture.mrn);
    const call = await sandboxHookCall({ serviceBaseUrl: config.publicUrl, fhirBaseUrl: fhirBase, token, patientId, hook: args.hook, prefetch: args.prefetch, withToken: args.token });
    console.log(`EHR simulator -> ${call.serviceUrl.split('/').pop()} (${args.hook}) for fixture "${fixture.key}"; prefetch ${args.prefetch ? 'sent' : 'omitted'}; token ${args.token ? 'sent' : 'omitted'}`);
    // The service never makes a hook wait for the model: while the analysis runs, ask again as an EHR would.
    const until = Date.now() + args.waitS * 1000;
    let res = await ehr.callHook(call);
    while (res.status === 200 && isPending(res.body) && Date.now() < until) {
      console.log('AI review in progress; asking again in 3 s (as on the next chart action)…');
      await new Promise((r) => setTimeout(r, 3000));
      res = await ehr.callHook(call);
    }
    console.log(`HTTP ${res.status}`);
    if (res.status !== 200) {
      console.log(JSON.stringify(res.body, null, 2));
      return 1;
    }
    printCards((res.body as { cards: CdsCard[] }).cards);
    return 0;
  } finally {
    await ehr?.close();
    await running?.close();
  }
}
