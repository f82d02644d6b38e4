#!/usr/bin/env node
// Entry point: registers the TypeScript loader (tsx) and hands over to the CLI.
import { register } from 'tsx/esm/api';
import '../src/platform/websocket-shim.js';

register();
const { main } = await import('../src/cli.ts');
process.exitCode = await main(process.argv.slice(2));
