import { describe, expect, it } from 'vitest';
import { measurementLines } from '../../launch/eye-summary.js';

describe('review page: measurements on record', () => {
  it('names each measurement the rules use, in plain words, per eye where it is per eye', () => {
    expect(measurementLines({ hba1cPercent: 8.44, bloodPressure: { systolicMmHg: 148, diastolicMmHg: 92 }, iopMmHg: { right: 16, left: 17 }, logMar: { right: 0.3 } })).toEqual([
      'Visual acuity (logMAR): right 0.30, left not documented',
      'Intraocular pressure: right 16 mmHg, left 17 mmHg',
      'HbA1c: 8.4%',
      'Blood pressure: 148/92 mmHg',
    ]);
  });
  it('says "not documented" for what the record lacks, never a number it does not have', () => {
    expect(measurementLines(undefined)).toEqual([
      'Visual acuity (logMAR): right not documented, left not documented',
      'Intraocular pressure: right not documented, left not documented',
      'HbA1c: not documented',
      'Blood pressure: not documented',
    ]);
  });
});
