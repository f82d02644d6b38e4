/**
 * The model-card page every card's `source.url` points to: which model produced the card, what it is for,
 * what it is not for. Served by the service itself so it always names the model actually loaded.
 */
import express, { type Router } from 'express';
import type { ModelInfo } from '../model/runtime/types.js';
import { RANDOM_WEIGHTS_BANNER } from '../reports/codes.js';
import { escapeHtml } from '../reports/note.js';

export function modelCardPage(info: ModelInfo | null): string {
  const model = info
    ? `<dl><dt>Model</dt><dd>${escapeHtml(info.name)} ${escapeHtml(info.version)}</dd><dt>Build</dt><dd>${escapeHtml(info.dtype)} on ${escapeHtml(info.executionProvider)}; manifest sha256 <code>${escapeHtml(info.manifestSha256.slice(0, 16))}…</code></dd></dl>`
    : '<p>No model is loaded: the service answers without AI findings.</p>';
  const banner = info?.random ? `<p class="test-model" role="alert">${escapeHtml(RANDOM_WEIGHTS_BANNER)}: its answers mean nothing clinically.</p>` : '';
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><title>VOLMO model card</title>
<style>body{font-family:system-ui,sans-serif;max-width:48rem;margin:1rem auto;padding:0 1rem;color:#1b1b1b}.test-model{background:#b00020;color:#fff;font-weight:700;padding:.75rem}dt{font-weight:600}</style></head>
<body>${banner}<h1>VOLMO ophthalmic AI: model card</h1>${model}
<h2>Intended use</h2><p>Decision support for clinicians: draft findings from colour fundus photographs and OCT of adults — screening for 12 eye conditions, diabetic retinopathy staging (ICDR 0–4 per eye), macular hole staging — and a draft report for clinician review. Every output is a draft; a clinician reviews, edits and signs it.</p>
<h2>Not for</h2><ul><li>Diagnosis or treatment decisions without clinician review.</li><li>Images other than colour fundus photographs and OCT; images the service's quality checks refuse are listed as not assessed, never guessed.</li><li>Populations and cameras the site has not validated: measure it on local data first (<code>volmo eval</code>).</li></ul>
<h2>Limits</h2><ul><li>Findings come from the model's first answer token; answers that cannot be read are reported as such.</li><li>Referral urgency follows documented rules on the model's findings, not the model's own judgement.</li><li>Published figures (VOLMO: average F1 87.4% on its evaluation sets) come from other populations.</li></ul>
</body></html>`;
}

export function modelCardRouter(info: () => ModelInfo | null): Router {
  const router = express.Router();
  router.get('/model-card', (_req, res) => {
    res.set({ 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-cache', 'Content-Security-Policy': "default-src 'none'; style-src 'unsafe-inline'", 'X-Content-Type-Options': 'nosniff' }).send(modelCardPage(info()));
  });
  return router;
}
