import type { Condition, MedicationRequest, MedicationStatement, Observation } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { ifccToNgsp, normaliseHba1c, parseVisualAcuity, pressureMmHg } from '../../src/evidence/measurements.js';
import { extractMeasurements } from '../../src/evidence/observation-extract.js';
import { ageInYears, categorise, demographics, eyeFromText, summariseConditions, summariseEyeMedications } from '../../src/evidence/record-extract.js';
import { NOW, PATIENT_P1 } from './helpers/patient-records.js';

const ofType = <T>(t: string) => PATIENT_P1.filter((r) => r.resourceType === t) as unknown as T[];

describe('measurements', () => {
  it('converts HbA1c between NGSP % and IFCC mmol/mol', () => {
    expect(normaliseHba1c({ value: 48, code: 'mmol/mol' })).toMatchObject({ percent: 6.5, mmolPerMol: 48 });
    expect(normaliseHba1c({ value: 53, unit: 'mmol/mol' })).toMatchObject({ percent: 7, mmolPerMol: 53 });
    expect(normaliseHba1c({ value: 8, code: '%' })).toMatchObject({ percent: 8, mmolPerMol: 64 });
    expect(normaliseHba1c({ value: 0.065, code: '1' })).toMatchObject({ percent: 6.5 });
    expect(ifccToNgsp(65)).toBeCloseTo(8.1, 1);
  });

  it('refuses unknown units and implausible HbA1c values', () => {
    expect(normaliseHba1c({ value: 6.5, code: 'mg/dL' })).toBeUndefined();
    expect(normaliseHba1c({ value: 65, code: '%' })).toBeUndefined();
    expect(normaliseHba1c({ code: '%' })).toBeUndefined();
  });

  it('normalises pressures to mmHg', () => {
    expect(pressureMmHg({ value: 16, code: 'mm[Hg]' })).toBe(16);
    expect(pressureMmHg({ value: 2, unit: 'kPa' })).toBe(15);
    expect(pressureMmHg({ value: 2, unit: 'psi' })).toBeUndefined();
  });

  it.each([
    [{ string: '20/40' }, { logMar: 0.3, snellen: '20/40' }],
    [{ string: '6/12' }, { logMar: 0.3, snellen: '6/12' }],
    [{ string: '20/20' }, { logMar: 0, snellen: '20/20' }],
    [{ string: '20/40-2' }, { logMar: 0.3, snellen: '20/40' }],
    [{ string: '6 / 60' }, { logMar: 1, snellen: '6/60' }],
    [{ ratio: { numerator: { value: 20 }, denominator: { value: 200 } } }, { logMar: 1, snellen: '20/200' }],
    [{ quantity: { value: 0.3, code: '{logMAR}' } }, { logMar: 0.3, snellen: '20/40' }],
    [{ quantity: { value: 0.5, unit: 'decimal' } }, { logMar: 0.3, snellen: '20/40' }],
    [{ string: 'CF at 1 m' }, { text: 'CF at 1 m' }],
    [{ string: 'NLP' }, { text: 'NLP' }],
  ])('parses visual acuity %j', (input, expected) => {
    expect(parseVisualAcuity(input)).toEqual(expected);
  });

  it('does not guess unitless or malformed acuity', () => {
    expect(parseVisualAcuity({ quantity: { value: 0.3 } })).toBeUndefined();
    expect(parseVisualAcuity({ string: 'good' })).toBeUndefined();
    expect(parseVisualAcuity({ string: '0/40' })).toBeUndefined();
  });
});

describe('record extraction', () => {
  it('computes age from full and partial birth dates', () => {
    expect(ageInYears('1961-06-15', NOW)).toBe(64);
    expect(ageInYears('1961-04-30', NOW)).toBe(65);
    expect(ageInYears('1961', NOW)).toBe(65);
    expect(ageInYears('2030-01-01', NOW)).toBeUndefined();
    expect(ageInYears('garbage', NOW)).toBeUndefined();
    expect(demographics(undefined, NOW)).toEqual({});
  });

  it('categorises conditions by SNOMED, ICD-10 and text, with exclusions', () => {
    expect(categorise({ coding: [{ system: 'http://snomed.info/sct', code: '44054006' }] })).toBe('diabetes');
    expect(categorise({ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'E11.9' }] })).toBe('diabetes');
    expect(categorise({ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'H40.1231' }] })).toBe('glaucoma');
    expect(categorise({ coding: [{ system: 'http://hl7.org/fhir/sid/icd-10-cm', code: 'H40.052' }] })).toBeUndefined(); // ocular hypertension
    expect(categorise({ text: 'HTN' })).toBe('hypertension');
    expect(categorise({ text: 'Ocular hypertension' })).toBeUndefined();
    expect(categorise({ text: 'Diabetes insipidus' })).toBeUndefined();
    expect(categorise({ text: 'Glaucoma suspect' })).toBeUndefined();
    expect(categorise({ text: 'Cataract' })).toBeUndefined();
  });

  it('keeps active, confirmed diabetes/hypertension/glaucoma in a stable order', () => {
    const s = summariseConditions(ofType<Condition>('Condition'));
    expect(s.map((c) => [c.category, c.coding.display, c.eye])).toEqual([
      ['diabetes', 'Type 2 diabetes mellitus', undefined],
      ['hypertension', 'Essential (primary) hypertension', undefined],
      ['glaucoma', 'Primary open-angle glaucoma, left eye', 'left'],
    ]);
    expect(s[0].coding.code).toBe('44054006');
  });

  it('keeps current eye-relevant medications only, from orders and the medication list', () => {
    const meds = summariseEyeMedications([...ofType<MedicationRequest>('MedicationRequest'), ...ofType<MedicationStatement>('MedicationStatement')]);
    expect(meds.map((m) => [m.coding.display, m.eye])).toEqual([
      ['Latanoprost 0.005% ophthalmic solution', 'left'],
      ['Hydroxychloroquine 200 mg tablet', undefined],
      ['Brimonidine tartrate 0.2% solution', 'right'],
    ]);
  });

  it('reads eye laterality from text', () => {
    expect(eyeFromText('1 drop OU bid')).toBe('both');
    expect(eyeFromText('Right eye and left eye')).toBe('both');
    expect(eyeFromText('instil OD')).toBe('right');
    expect(eyeFromText('os')).toBeUndefined();
  });
});

describe('observation extraction', () => {
  it('picks the latest valid value of each measurement and eye', () => {
    const { measurements, problems } = extractMeasurements(ofType<Observation>('Observation').filter((o) => o.subject?.reference === 'Patient/p1'));
    expect(measurements.hba1c).toMatchObject({ percent: 8.1, mmolPerMol: 65, reported: { value: 65, unit: 'mmol/mol' }, effective: '2026-03-02' });
    expect(measurements.bloodPressure).toEqual({ systolicMmHg: 148, diastolicMmHg: 92, effective: '2026-04-10T09:30:00Z' });
    expect(measurements.iop.right?.mmHg).toBe(16);
    expect(measurements.iop.left?.mmHg).toBe(24); // the entered-in-error 50 is ignored
    // same day: best corrected 20/25 wins over a later uncorrected 20/40
    expect(measurements.visualAcuity.right).toMatchObject({ snellen: '20/25', logMar: 0.1, corrected: true, loinc: '79880-1' });
    expect(measurements.visualAcuity.left).toMatchObject({ snellen: '20/40', logMar: 0.3, corrected: true });
    expect(problems).toEqual([]);
  });

  it('pairs separate systolic/diastolic observations and reports unknown units', () => {
    const obs = [
      { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8480-6' }] }, effectiveDateTime: '2026-01-01T10:00:00Z', valueQuantity: { value: 18, unit: 'kPa' } },
      { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '8462-4' }] }, effectiveDateTime: '2026-01-01T10:00:00Z', valueQuantity: { value: 80, code: 'mm[Hg]' } },
      { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://loinc.org', code: '4548-4' }] }, effectiveDateTime: '2026-02-01', valueQuantity: { value: 7, unit: 'mg' } },
      { resourceType: 'Observation', status: 'final', code: { coding: [{ system: 'http://snomed.info/sct', code: '41633001' }] }, bodySite: { coding: [{ system: 'http://snomed.info/sct', code: '362503005' }] }, effectiveDateTime: '2026-02-01', valueQuantity: { value: 19, code: 'mm[Hg]' } },
    ] as Observation[];
    const { measurements, problems } = extractMeasurements(obs);
    expect(measurements.bloodPressure).toMatchObject({ systolicMmHg: 135, diastolicMmHg: 80 });
    expect(measurements.hba1c).toBeUndefined();
    expect(measurements.iop.left?.mmHg).toBe(19);
    expect(problems.map((p) => [p.kind, p.source])).toEqual([['unit_unknown', 'Observation:hba1c']]);
  });
});
