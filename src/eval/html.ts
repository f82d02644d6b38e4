/**
 * eval.html, pure: one self-contained page (inline CSS, the reliability diagram as a PNG data URL, no
 * scripts, no external resources). Every value is escaped. A random-weight model's banner opens and
 * closes the page.
 */
import { escapeHtml } from '../reports/note.js';
import { num, numCi, pct, pctCi } from './format.js';
import type { EvalReport } from './report.js';
import type { Unscored } from './summary.js';

const e = (v: string | number) => escapeHtml(String(v));
const row = (cells: readonly string[], tag = 'td') => `<tr>${cells.map((c) => `<${tag}>${c}</${tag}>`).join('')}</tr>`;
const table = (head: readonly string[], rows: readonly (readonly string[])[]) =>
  `<table><thead>${row(head.map(e), 'th')}</thead><tbody>${rows.map((r) => row(r.map(e))).join('')}</tbody></table>`;

function unscored(u: Unscored): string {
  const parts = Object.entries(u).filter(([, n]) => n > 0).map(([k, n]) => `${n} ${k}`);
  return parts.length ? parts.join(', ') : '—';
}

const STYLE = `body{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;font-size:14px}
th{background:#f3f3f3}.banner{background:#b00;color:#fff;font-weight:bold;padding:10px;text-align:center}
.note{color:#555;font-size:13px}`;

function screeningSection(r: EvalReport): string {
  const s = r.summary;
  return `<h2>Screening conditions</h2>
<p class="note">Test-positive = the service's call is positive or indeterminate (both raise a referral); unparseable answers and images without an answer are counted, not scored. 95% percentile bootstrap intervals, ${e(r.settings.resamples)} resamples, seed ${e(r.settings.seed)}.</p>
${table(['condition', 'labelled', 'scored', 'not scored', 'TP/FP/TN/FN', 'sensitivity', 'specificity', 'PPV', 'F1', 'ECE'], s.screening.map((c) => [
    c.label, String(c.labelled), String(c.scored), unscored(c.unscored), `${c.counts.tp}/${c.counts.fp}/${c.counts.tn}/${c.counts.fn}`,
    pctCi(c.sensitivity), pctCi(c.specificity), pctCi(c.ppv), pctCi(c.f1), num(c.calibration.ece),
  ]))}
<p>Mean F1: ${e(pct(s.meanF1.value))} over ${e(s.meanF1.conditions)} condition(s).</p>`;
}

function drSection(r: EvalReport): string {
  const s = r.summary;
  const confusion = table(['reference \\ model', '0', '1', '2', '3', '4'], s.drStage.confusion.map((cells, i) => [String(i), ...cells.map(String)]));
  const idx = r.published[0];
  const volmo = r.published[1];
  return `<h2>Diabetic retinopathy</h2>
<p>ICDR stage: ${e(s.drStage.scored)}/${e(s.drStage.labelled)} scored (not scored: ${e(unscored(s.drStage.unscored))}); accuracy ${e(pctCi(s.drStage.accuracy))}; quadratic weighted kappa ${e(numCi(s.drStage.kappa))}.</p>
${confusion}
<h3>Referable DR (ICDR &ge; 2 or macular edema)</h3>
${table(['', 'sensitivity', 'specificity', 'F1', 'n'], [
    ['this site (this model)', pctCi(s.referableDr.sensitivity), pctCi(s.referableDr.specificity), pctCi(s.referableDr.f1), `${s.referableDr.scored} scored of ${s.referableDr.labelled}`],
    [`${idx.system} — published`, pct(idx.sensitivity), pct(idx.specificity), '', idx.source],
    [`${volmo.system} — published`, '', '', `${pct(volmo.f1)} (${volmo.measure})`, volmo.source],
  ])}
<p class="note">${e(r.publishedNote)} IDx-DR's reference: ${e(idx.measure)}.</p>`;
}

function operatingSection(r: EvalReport): string {
  const ops = r.siteOperatingPoints;
  const site = new Map(ops.withThresholds.screening.map((c) => [c.condition, c]));
  const rows = r.summary.screening.filter((c) => c.operatingPoint).map((c) => {
    const op = c.operatingPoint!;
    const svc = site.get(c.condition)!;
    return [c.label, num(op.threshold), String(op.positives), pct(op.sensitivity), pct(op.specificity), pct(svc.sensitivity.value), pct(svc.specificity.value)];
  });
  const ref = r.summary.referableDr.operatingPoint;
  if (ref) rows.push(['referable DR: P(ICDR ≥ 2)', num(ref.threshold), String(ref.positives), pct(ref.sensitivity), pct(ref.specificity), '', '']);
  return `<h2>Site operating points</h2>
<p>Thresholds for a target sensitivity of ${e(ops.targetSensitivity)}, written to <code>${e(ops.file)}</code>; the service uses them when <code>VOLMO_FINDINGS_THRESHOLDS_FILE</code> names that file. "By probability": the rule P &ge; threshold; "service": the service's own calls with the file in effect (answer text and probability together).</p>
${table(['condition', 'threshold', 'positives', 'sensitivity (by probability)', 'specificity (by probability)', 'sensitivity (service)', 'specificity (service)'], rows)}`;
}

export function evalHtml(r: EvalReport, reliabilityPng: Buffer): string {
  const banner = r.banner ? `<div class="banner">${e(r.banner)}</div>` : '';
  const s = r.summary;
  const o = s.images.byOutcome;
  const reasons = Object.entries(s.images.reasons).map(([k, n]) => `${k}: ${n}`).join(', ') || '—';
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>VOLMO site validation</title><style>${STYLE}</style></head><body>
${banner}
<h1>VOLMO site validation</h1>
<p>Model ${e(r.model.name)} ${e(r.model.version)} (${e(r.model.dtype)}, ${e(r.model.executionProvider)}, manifest ${e(r.model.manifestSha256.slice(0, 12))}); task set ${e(r.settings.taskSetVersion)}; up to ${e(r.settings.maxTiles)} tiles; bands: ${e(r.settings.bands.source)}. Generated ${e(r.generatedAt)}.</p>
<p>Dataset: ${e(r.dataset.layout)} layout, ${e(s.images.total)} images — ${e(o.assessed)} assessed, ${e(o.ungradable)} ungradable, ${e(o.rejected)} rejected, ${e(o['not-assessed'])} not assessed. Ungradable rate (ungradable + rejected): ${e(pct(s.images.ungradableRate))}. Reasons: ${e(reasons)}.</p>
${r.dataset.notes.map((n) => `<p class="note">${e(n)}</p>`).join('\n')}
${screeningSection(r)}
${drSection(r)}
<h2>Macular-hole stage</h2>
<p>${e(s.macularHole.scored)}/${e(s.macularHole.labelled)} scored (not scored: ${e(unscored(s.macularHole.unscored))}); accuracy ${e(pct(s.macularHole.accuracy))}.</p>
<h2>Calibration</h2>
<p>Expected calibration error (${e(s.calibration.screening.bins.length)} equal-width bins): screening P(TRUE) ${e(num(s.calibration.screening.ece))} (n=${e(s.calibration.screening.n)}); P(ICDR ≥ 2) ${e(num(s.calibration.referableDr.ece))} (n=${e(s.calibration.referableDr.n)}).</p>
<img alt="reliability diagram" src="data:image/png;base64,${reliabilityPng.toString('base64')}">
${operatingSection(r)}
${banner}
</body></html>
`;
}
