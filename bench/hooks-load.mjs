// The load generator of `npm run bench -- hooks`, run as a second process so it never shares the service's
// event loop: autocannon with one pre-signed JWT per request (distinct jti), the given body, for `amount`
// requests or `durationS`, whichever ends first. Prints autocannon's result as one JSON line.
import { readFileSync } from 'node:fs';
import autocannon from 'autocannon';

const spec = JSON.parse(readFileSync(process.argv[2], 'utf8'));
let next = 0;
const result = await autocannon({
  url: spec.url,
  connections: spec.connections,
  amount: spec.tokens.length,
  duration: spec.durationS,
  method: 'POST',
  headers: { 'content-type': 'application/json' },
  body: spec.body,
  requests: [
    {
      setupRequest: (req) => ({ ...req, headers: { ...req.headers, authorization: `Bearer ${spec.tokens[next++ % spec.tokens.length]}` } }),
    },
  ],
});
console.log(JSON.stringify({ rps: result.requests.total / Math.max(result.duration, 0.001), p50: result.latency.p50, p99: result.latency.p99, non2xx: result.non2xx, errors: result.errors, timeouts: result.timeouts, total: result.requests.total }));
