/**
 * Consistency checks between tasks and between images of one eye. A failed check marks the findings
 * `inconsistent` and adds a flag; it never changes a finding's value.
 */
import type { EyeFindings, Flag, ScreeningImageResult, StageImageResult } from './findings-types.js';

const ICDR_LABEL = ['no apparent retinopathy', 'mild NPDR', 'moderate NPDR', 'severe NPDR', 'proliferative DR'];

export function checkConsistency(
  eyes: EyeFindings[], screening: ScreeningImageResult[], stages: StageImageResult[],
): Flag[] {
  const flags: Flag[] = [];
  for (const e of eyes) {
    const dr = e.screening.find((f) => f.condition === 'diabetic-retinopathy');
    const grade = e.drStage.status === 'graded' ? e.drStage.grade : undefined;
    if (dr && grade !== undefined) {
      if (dr.status === 'negative' && grade >= 1) {
        dr.inconsistent = true;
        e.drStage.inconsistent = true;
        flags.push({
          code: 'dr-screen-negative-but-staged', eye: e.eye,
          message: `screening answered "no diabetic retinopathy" but staging graded ICDR ${grade} (${ICDR_LABEL[grade]})`,
        });
      } else if (dr.status === 'positive' && grade === 0) {
        dr.inconsistent = true;
        e.drStage.inconsistent = true;
        flags.push({
          code: 'dr-screen-positive-but-stage-zero', eye: e.eye,
          message: 'screening answered "diabetic retinopathy present" but staging graded ICDR 0 (no apparent retinopathy)',
        });
      }
    }
    for (const f of e.screening) {
      const calls = new Set(screening.filter((r) => r.eye === e.eye && r.condition === f.condition && r.status !== 'unparseable').map((r) => r.status));
      if (calls.has('positive') && calls.has('negative')) {
        f.inconsistent = true;
        flags.push({ code: 'images-disagree', eye: e.eye, message: `images of this eye disagree on ${f.condition}` });
      }
    }
    const grades = new Set(stages.filter((r) => r.eye === e.eye && r.answer.kind === 'digit').map((r) => (r.answer.kind === 'digit' ? r.answer.value : -1)));
    if (grades.size > 1) {
      e.drStage.inconsistent = true;
      flags.push({ code: 'images-disagree', eye: e.eye, message: `images of this eye were graded differently (ICDR ${[...grades].sort().join(', ')}); the highest is reported` });
    }
  }
  return flags;
}
