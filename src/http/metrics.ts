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
  /** Background jobs that ended an attempt here, by outcome (done, queued = retried, dead, lost) and error kind. */
  jobOutcomes: Counter<'outcome' | 'kind'>;
  /** Jobs in the store by state (read from the store at each scrape, see `observeJobs`). */
  jobs: Gauge<'state'>;
  /** Where `jobs` reads its counts (set when the store is durable). */
  observeJobs(counts: () => Promise<Record<string, number>>): void;
}

export function createMetrics(options: { defaultMetrics?: boolean } = {}): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, prefix: 'volmo_' });
  let jobCounts: (() => Promise<Record<string, number>>) | undefined;
  return {
    registry,
    jobOutcomes: new Counter({ name: 'volmo_jobs_finished_total', help: 'Background job attempts that ended in this replica, by outcome (done, queued = retried later, dead, lost) and error kind', labelNames: ['outcome', 'kind'], registers: [registry] }),
    jobs: new Gauge({
      name: 'volmo_jobs',
      help: 'Background jobs in the store by state (queued, running, done, dead); dead ones are listed at /admin/jobs?state=dead',
      labelNames: ['state'],
      registers: [registry],
      async collect() {
        if (!jobCounts) return;
        try {
          for (const [state, n] of Object.entries(await jobCounts())) this.set({ state }, n);
        } catch {
          // The store is unreachable: the gauge keeps its last values (the scrape itself must not fail).
        }
      },
    }),
    observeJobs(counts) {
      jobCounts = counts;
    },
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
