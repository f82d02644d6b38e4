// @medplum/core expects a global WebSocket at import time; Node 20 only has one behind
// --experimental-websocket. Nothing in volmo-cds opens WebSockets, so a class that refuses to
// connect is enough and makes any accidental use fail loudly.
if (typeof globalThis.WebSocket === 'undefined') {
  globalThis.WebSocket = class WebSocketUnavailable {
    constructor() {
      throw new Error('WebSocket is not available in this process');
    }
  };
}
