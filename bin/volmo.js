#!/usr/bin/env node
// Entry point: registers the TypeScript loader (tsx) and hands over to the CLI.
import { register } from 'tsx/esm/api';
import '../src/platform/websocket-shim.js';

register();
// Before anything else can load onnxruntime: its telemetry off (src/platform/no-telemetry.ts).
await import('../src/platform/no-telemetry.ts');
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
