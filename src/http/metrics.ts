/** Prometheus metrics (prom-client), one registry per app instance so tests stay isolated. */
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';

export interface Metrics {
  registry: Registry;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'method' | 'route'>;
  hookCalls: Counter<'service' | 'outcome'>;
  cards: Counter<'service' | 'indicator'>;
  feedback: Counter<'service' | 'outcome' | 'reason'>;
  watcherSeen: Counter<'source'>;
  watcherPatients: Counter<'outcome'>;
  modelReady: Gauge;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'volmo_' });
  return {
    registry,
    httpRequests: new Counter({ name: 'volmo_http_requests_total', help: 'HTTP requests by route and status', labelNames: ['method', 'route', 'status'], registers: [registry] }),
    httpDuration: new Histogram({
      name: 'volmo_http_request_duration_seconds',
      help: 'HTTP request duration',
      labelNames: ['method', 'route'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers: [registry],
    }),
    hookCalls: new Counter({ name: 'volmo_cds_hook_calls_total', help: 'CDS Hooks calls by service and outcome', labelNames: ['service', 'outcome'], registers: [registry] }),
    cards: new Counter({ name: 'volmo_cds_cards_total', help: 'Cards returned by service and indicator', labelNames: ['service', 'indicator'], registers: [registry] }),
    feedback: new Counter({ name: 'volmo_cds_feedback_total', help: 'Card feedback recorded (first report per card and outcome) by service, outcome and override reason', labelNames: ['service', 'outcome', 'reason'], registers: [registry] }),
    watcherSeen: new Counter({ name: 'volmo_watcher_patients_seen_total', help: 'Patients with new eye images noticed by the image watcher, by source', labelNames: ['source'], registers: [registry] }),
    watcherPatients: new Counter({ name: 'volmo_watcher_patients_total', help: 'Patients the image watcher handled, by outcome (analysed, known, no-images, failed)', labelNames: ['outcome'], registers: [registry] }),
    modelReady: new Gauge({ name: 'volmo_model_ready', help: '1 when the model is loaded and ready', registers: [registry] }),
  };
}
