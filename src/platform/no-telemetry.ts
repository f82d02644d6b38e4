/**
 * Turns onnxruntime's own telemetry off. Imported FIRST by every entry point (bin/volmo.js, src/cli.ts,
 * src/model/cli.ts, the inference engine and its worker, the bench, test/setup.ts, vitest.config.ts), and by
 * src/model/runtime/onnx-session.ts, the only importer of onnxruntime-node, which refuses to open a session
 * when the switch is missing.
 *
 * Why: the official onnxruntime 1.29+ Linux/macOS binaries carry a 1DS ("OneCollector") telemetry client that
 * is ON by default (microsoft/onnxruntime PR #27379, "Add POSIX telemetry"). Measured here with
 * onnxruntime-node 1.30.0 (`strace -f -e trace=network`): ~9 s after the first session opens, the process
 * resolves mobile.events.data.microsoft.com through the C resolver (native code: Node's dns/net hooks never
 * see it), and at start-up it writes a device id and an event cache under ~/.cache/Microsoft/DeveloperTools/.
 *
 * The switch: the 1.30.0 library (libonnxruntime.so.1) reads `ORT_DISABLE_TELEMETRY` with getenv when its
 * environment is first created; set, it creates no uploader, no event cache and no device id (same PR:
 * "ORT_DISABLE_TELEMETRY=1 is a full non-Windows opt-out when set before initialization ... latched for the
 * process lifetime"). Later upstream versions renamed it `ORT_TELEMETRY_DISABLED` (PR #29843); both are set
 * so that an upgrade cannot silently turn telemetry back on. The Node binding exposes no
 * `DisableTelemetryEvents` call (and that C API call would come after the environment already exists).
 *
 * Only the main thread can set it: writes to `process.env` reach the C environment (getenv) on the main
 * thread only, while a worker thread's `process.env` is a private copy of its parent's. A worker therefore
 * only checks (`ortTelemetryOff`), and the engine, which imports this module, sets it before any worker starts.
 */
import { isMainThread } from 'node:worker_threads';

export const ORT_TELEMETRY_SWITCHES: Readonly<Record<string, string>> = Object.freeze({
  ORT_DISABLE_TELEMETRY: '1',
  ORT_TELEMETRY_DISABLED: '1',
});

if (isMainThread) Object.assign(process.env, ORT_TELEMETRY_SWITCHES);

/** True when every switch is set in `env` (a worker's copy of its parent's environment by default). */
export function ortTelemetryOff(env: NodeJS.ProcessEnv = process.env): boolean {
  return Object.entries(ORT_TELEMETRY_SWITCHES).every(([k, v]) => env[k] === v);
}
