import '../src/platform/websocket-shim.js';
import { installLoopbackGuard } from './helpers/loopback-guard.js';

installLoopbackGuard();
