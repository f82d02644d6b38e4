/** The plain-text summary `volmo eval` prints, pure. A random-weight model's banner is its first and last line. */
import { num, pct, pctCi } from './format.js';
import type { EvalReport } from './report.js';

const pad = (s: string, n: number) => (s.length >= n ? `${s} ` : s + ' '.repeat(n - s.length));

export function consoleSummary(r: EvalReport, written: readonly string[]): string {
  const s = r.summary;
  const o = s.images.byOutcome;
  const ops = r.siteOperatingPoints;
  const lines = [
    ...(r.banner ? [r.banner] : []),
    `volmo eval: ${r.model.name} ${r.model.version} (${r.model.executionProvider}, ${r.model.dtype}), ${r.dataset.layout} layout, ${s.images.total} images`,
    `images: ${o.assessed} assessed, ${o.ungradable} ungradable, ${o.rejected} rejected, ${o['not-assessed']} not assessed; ungradable rate ${pct(s.images.ungradableRate)}`,
    '',
    `screening (test-positive = positive or indeterminate; 95% bootstrap CI, ${r.settings.resamples} resamples, seed ${r.settings.seed})`,
    `${pad('condition', 34)}${pad('scored', 8)}${pad('sensitivity', 22)}${pad('specificity', 22)}${pad('PPV', 22)}${pad('F1', 22)}${pad('ECE', 7)}threshold@${r.settings.targetSensitivity}`,
    ...s.screening.map((c) =>
      `${pad(c.label, 34)}${pad(`${c.scored}/${c.labelled}`, 8)}${pad(pctCi(c.sensitivity), 22)}${pad(pctCi(c.specificity), 22)}${pad(pctCi(c.ppv), 22)}${pad(pctCi(c.f1), 22)}${pad(num(c.calibration.ece), 7)}${num(c.operatingPoint?.threshold)}`),
    `mean F1 ${pct(s.meanF1.value)} over ${s.meanF1.conditions} condition(s)`,
    '',
    `DR stage (ICDR): ${s.drStage.scored}/${s.drStage.labelled} scored; accuracy ${pctCi(s.drStage.accuracy)}; quadratic weighted kappa ${num(s.drStage.kappa.value)}`,
    `referable DR (ICDR >= 2 or macular edema): ${s.referableDr.scored}/${s.referableDr.labelled} scored; sensitivity ${pctCi(s.referableDr.sensitivity)}; specificity ${pctCi(s.referableDr.specificity)}`,
    `  published: IDx-DR sensitivity 87.2%, specificity 90.7%; VOLMO-2B average F1 87.4%. ${r.publishedNote}`,
    `macular-hole stage: ${s.macularHole.scored}/${s.macularHole.labelled} scored; accuracy ${pct(s.macularHole.accuracy)}`,
    `calibration (ECE): screening P(TRUE) ${num(s.calibration.screening.ece)} (n=${s.calibration.screening.n}); P(ICDR >= 2) ${num(s.calibration.referableDr.ece)} (n=${s.calibration.referableDr.n})`,
    `site operating points (target sensitivity ${ops.targetSensitivity}): ${Object.keys(ops.thresholds.screening).length} condition(s)${ops.thresholds.referableDr ? ' + referable DR' : ''} -> ${ops.file} (VOLMO_FINDINGS_THRESHOLDS_FILE)`,
    ...r.dataset.notes.map((n) => `note: ${n}`),
    `written: ${written.join(', ')}`,
    ...(r.banner ? [r.banner] : []),
  ];
  return `${lines.join('\n')}\n`;
}
