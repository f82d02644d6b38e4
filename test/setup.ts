import '../src/platform/no-telemetry.js'; // first: onnxruntime telemetry off in every test process
import '../src/platform/websocket-shim.js';
import { installLoopbackGuard } from './helpers/loopback-guard.js';

installLoopbackGuard();
