/**
 * The review page's pure parts: record dates as local-date <time> elements, measurement dates carried from
 * the evidence (ClinicalFacts.measuredAt), the images' plain words (one mapping with the cards), the route's
 * number check, the placeholder picture, orders from draft orders and their merging, the image rendering for
 * view (bounded, metadata stripped, refused when not the analysed image).
 */
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { analysisImages, imageIndex, imageViews, placeholderSvg } from '../../launch/app-images.js';
import { measurementLines, measurements } from '../../launch/eye-summary.js';
import { dateElement, dateText, recordDate } from '../../launch/local-date.js';
import { appPage, imageAlt, imageHref } from '../../launch/pages.js';
import { orderNames } from '../../launch/app-page.js';
import { clinicalFacts } from '../../src/analysis/exam-context.js';
import { addsOrders, MAX_ORDERS, mergeOrders } from '../../src/analysis/orders.js';
import { orderRefs } from '../../src/cds/eye-orders.js';
import type { EvidenceBundle, EvidenceImage, PatientContext } from '../../src/evidence/types.js';
import { contentHash } from '../../src/imaging/content-hash.js';
import { reasonInWords } from '../../src/imaging/rejection.js';
import { ImageNotSame, renderForView } from '../../src/imaging/view-image.js';
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';

describe('record dates on the page', () => {
  it('keeps a calendar date as that day, turns an instant into UTC for the script, and writes the record\'s own date without it', () => {
    expect(recordDate('2025-02-20')).toEqual({ datetime: '2025-02-20', text: '2025-02-20', calendar: true });
    expect(recordDate('2025-02')).toEqual({ datetime: '2025-02', text: '2025-02', calendar: true });
    expect(recordDate('2025-06-01T01:30:00+02:00')).toEqual({ datetime: '2025-05-31T23:30:00.000Z', text: '2025-06-01', calendar: false });
    expect(recordDate('2025-03-04T14:20:00Z')?.datetime).toBe('2025-03-04T14:20:00.000Z');
  });
  it('shows nothing for what is not a FHIR date (never a half-parsed one)', () => {
    for (const bad of ['', 'yesterday', '2025-02-30', '2025-13-01', '2025-02-20T10:00', '2025-02-20 10:00:00Z', '<script>', '20250220', 'x'.repeat(100), undefined]) {
      expect(recordDate(bad as string | undefined), String(bad)).toBeUndefined();
      expect(dateElement(bad as string | undefined)).toBe('');
    }
  });
  it('writes a <time data-date> the page script rewrites, with the value escaped', () => {
    expect(dateElement('2025-02-20')).toBe('<time datetime="2025-02-20" data-date>2025-02-20</time>');
    expect(dateText('2025-06-01T01:30:00+02:00')).toBe('2025-06-01');
  });
});

const patient = (p: Partial<PatientContext>): PatientContext => ({ conditions: [], visualAcuity: {}, iop: {}, medications: [], notes: [], ...p });

describe('measurement dates', () => {
  it('are carried from the record into the facts the analysis keeps, only beside a value that is there', () => {
    const facts = clinicalFacts(patient({
      hba1c: { percent: 8.44, mmolPerMol: 69, reported: { value: 8.44, unit: '%' }, effective: '2025-02-20' },
      bloodPressure: { systolicMmHg: 148, diastolicMmHg: 92 },
      iop: { right: { mmHg: 16, effective: '2025-03-04T10:00:00Z' }, left: { mmHg: 17, effective: '2025-03-05' } },
      visualAcuity: { right: { text: 'CF', effective: '2025-03-04' }, left: { logMar: 0.3, effective: '2025-03-04' } },
    }));
    expect(facts.measuredAt).toEqual({ hba1c: '2025-02-20', iop: { right: '2025-03-04T10:00:00Z', left: '2025-03-05' }, logMar: { left: '2025-03-04' } });
    expect(clinicalFacts(patient({})).measuredAt).toBeUndefined();
  });
  it('are shown beside each value; an old analysis without dates reads as before', () => {
    const lines = measurementLines({ hba1cPercent: 8.44, bloodPressure: { systolicMmHg: 148, diastolicMmHg: 92 }, iopMmHg: { right: 16 }, logMar: { left: 0.3 }, measuredAt: { hba1c: '2025-02-20', iop: { right: '2025-03-04T10:00:00Z' }, logMar: { left: 'garbage' } } });
    expect(lines).toEqual([
      'Visual acuity (logMAR): right not documented, left 0.30',
      'Intraocular pressure: right 16 mmHg (2025-03-04), left not documented',
      'HbA1c: 8.4% (2025-02-20)',
      'Blood pressure: 148/92 mmHg',
    ]);
    expect(measurements({ iopMmHg: { right: 16 }, measuredAt: { iop: { right: '2025-03-04', left: '2025-03-05' } } })[1]).toEqual({
      label: 'Intraocular pressure', values: [{ text: 'right 16 mmHg', date: '2025-03-04' }, { text: 'left not documented' }],
    });
  });
  it('render on the page as local-date <time> elements, escaped', () => {
    const html = appPage({ needPatientBanner: false, patient: { name: 'A' }, drafts: [{ id: 'd1', noteText: '', random: false, model: 'm', eyeSummary: { referral: 'r', eyes: [], measurements: measurements({ hba1cPercent: 7, measuredAt: { hba1c: '2025-02-20' } }) } }] });
    expect(html).toContain('<li>HbA1c: 7.0% <span class="when">(<time datetime="2025-02-20" data-date>2025-02-20</time>)</span></li>');
  });
});

const image = (over: Partial<EvidenceImage>): EvidenceImage => ({
  contentHash: 'a'.repeat(64), eye: 'right', modality: 'OP', provenance: { fhirRef: 'Media/1', via: 'inline' }, gradability: { status: 'gradable', reasons: [] }, ...over,
});
const evidence = (images: Partial<EvidenceBundle['images']>): EvidenceBundle => ({ version: 1, patient: patient({}), caseText: '', images: { right: [], left: [], unknown: [], ...images }, problems: [], sources: { prefetchUsed: [], fetched: [] } });

describe('the images used', () => {
  it('are counted right, left, then eye not recorded (the route and the page agree on n)', () => {
    const ev = evidence({ unknown: [image({ eye: 'unknown', contentHash: 'c'.repeat(64) })], left: [image({ eye: 'left', contentHash: 'b'.repeat(64) })], right: [image({})] });
    expect(analysisImages(ev).map((i) => i.contentHash[0])).toEqual(['a', 'b', 'c']);
    expect(imageViews(ev).map((v) => [v.n, v.eye])).toEqual([[0, 'Right eye'], [1, 'Left eye'], [2, 'Eye not recorded']]);
    expect(analysisImages(undefined)).toEqual([]);
  });
  it('say why an ungradable one was not usable in the cards\' words (one mapping), never the codes', () => {
    const [v] = imageViews(evidence({ right: [image({ acquired: '2025-03-04T14:20:00Z', gradability: { status: 'ungradable', reasons: ['too_dark', 'no_disc', 'too_dark'] } })] }));
    expect(v).toEqual({ n: 0, eye: 'Right eye', kind: 'fundus photograph', date: '2025-03-04T14:20:00Z', notUsable: `${reasonInWords('too_dark')}; ${reasonInWords('no_disc')}` });
    expect(v!.notUsable).toBe('the image is too dark; the optic disc is not visible');
    expect(imageViews(evidence({ left: [image({ eye: 'left', modality: 'OPT', gradability: { status: 'ungradable', reasons: ['weird_code'] } })] }))[0]!.notUsable).not.toContain('_');
  });
  it('have alt text of eye, kind and date only, and links that carry nothing but ids', () => {
    expect(imageAlt({ eye: 'Left eye', kind: 'OCT scan', date: '2025-03-04T14:20:00Z' })).toBe('Left eye OCT scan, 2025-03-04');
    expect(imageAlt({ eye: 'Right eye', kind: 'fundus photograph' })).toBe('Right eye fundus photograph, date not recorded');
    expect(imageHref('s1', 'a-1', 3, 'thumb')).toBe('/app/image/a-1/3?session=s1&size=thumb');
    expect(imageHref('s1', 'a-1', 3, 'view')).toBe('/app/image/a-1/3/view?session=s1');
  });
  it("take a route number of digits only, up to 4 of them", () => {
    expect(imageIndex('0')).toBe(0);
    expect(imageIndex('9999')).toBe(9999);
    for (const bad of ['', '-1', '1.5', '1e3', '10000', 'abc', '..', ' 1', '0x1', undefined]) expect(imageIndex(bad), String(bad)).toBeUndefined();
  });
  it('a placeholder is a picture that says why, with the words escaped and no script', async () => {
    const svg = placeholderSvg('The image <b>could</b> not be shown: "x" & more words that need wrapping over several lines', 'thumb');
    expect(svg).not.toMatch(/<b>|<script/);
    expect(svg).toContain('&#60;b&#62;could');
    expect(svg.match(/<tspan/g)!.length).toBeGreaterThan(1);
    const meta = await sharp(Buffer.from(svg)).metadata();
    expect([meta.format, meta.width, meta.height]).toEqual(['svg', 192, 144]);
  });
});

describe('rendering an image for view', () => {
  const photo = () => sharp({ create: { width: 900, height: 600, channels: 3, background: '#a04020' } }).withExif({ IFD0: { Artist: 'Jane Doe', ImageDescription: 'MRN 12345' } }).jpeg().toBuffer();

  it('shrinks to the size asked, never larger, and drops the metadata', async () => {
    const src = await photo();
    expect((await sharp(src).metadata()).exif).toBeDefined();
    const hash = contentHash(src, 'image/jpeg');
    const thumb = await renderForView(src, { size: 'thumb', contentHash: hash });
    const tm = await sharp(thumb).metadata();
    expect([tm.format, tm.width, tm.height, tm.exif, tm.icc]).toEqual(['jpeg', 192, 128, undefined, undefined]);
    expect(thumb.includes(Buffer.from('Jane Doe'))).toBe(false);
    const large = await sharp(await renderForView(src, { size: 'large' })).metadata();
    expect([large.width, large.height]).toEqual([900, 600]); // not enlarged
  });
  it('refuses an image that is not the one analysed, and one that does not decode', async () => {
    const src = await photo();
    await expect(renderForView(src, { size: 'thumb', contentHash: 'f'.repeat(64) })).rejects.toBeInstanceOf(ImageNotSame);
    await expect(renderForView(Buffer.from('not an image'), { size: 'thumb' })).rejects.toMatchObject({ reason: 'unsupported_format' });
    await expect(renderForView(new Uint8Array(0), { size: 'thumb' })).rejects.toMatchObject({ reason: 'corrupt' });
    await expect(renderForView(src.subarray(0, 400), { size: 'thumb' })).rejects.toMatchObject({ name: 'ImageRejection' });
  });
});

describe('the orders a draft belongs to', () => {
  it('are read from the hook\'s draft orders defensively (reference and name only)', () => {
    expect(orderRefs((draftOrders(eyeExamOrder('p1', 'sr-1')) as { entry: { resource: unknown }[] }).entry.map((e) => e.resource))).toEqual([{ reference: 'ServiceRequest/sr-1', display: 'Fundus photography, both eyes' }]);
    expect(orderRefs([{ resourceType: 'ServiceRequest', id: '../x', code: { coding: [{ display: 'OCT macula' }] } }])).toEqual([{ display: 'OCT macula' }]);
    expect(orderRefs([null, 7, 'x', { resourceType: 'ServiceRequest' }, { resourceType: '<b>', id: 'a', code: { text: 5 } }])).toEqual([]);
    expect(orderRefs([{ resourceType: 'ServiceRequest', id: 'a', code: { text: 'y'.repeat(500) } }])[0]!.display).toHaveLength(200);
  });
  it('are merged once each, the first kept first, bounded', () => {
    const a = [{ reference: 'ServiceRequest/1', display: 'Fundus' }];
    expect(mergeOrders(a, [{ reference: 'ServiceRequest/1', display: 'renamed' }, { reference: 'ServiceRequest/2' }])).toEqual([...a, { reference: 'ServiceRequest/2' }]);
    expect(addsOrders(a, [{ reference: 'ServiceRequest/1' }])).toBe(false);
    expect(addsOrders(a, [{ display: 'Other' }])).toBe(true);
    const many = Array.from({ length: 30 }, (_, i) => ({ reference: `ServiceRequest/${i}` }));
    expect(mergeOrders(undefined, many)).toHaveLength(MAX_ORDERS);
    expect(addsOrders(mergeOrders(undefined, many), [{ reference: 'ServiceRequest/99' }])).toBe(false);
  });
  it('are named in plain words on the page', () => {
    expect(orderNames({ orders: [{ reference: 'ServiceRequest/sr-9', display: 'OCT macula' }, { reference: 'ServiceRequest/sr-10' }] })).toEqual(['OCT macula', 'order sr-10']);
    expect(orderNames({})).toEqual([]);
    expect(orderNames({ orders: [{ reference: 'ServiceRequest/1', display: 'OCT' }, { reference: 'ServiceRequest/2', display: 'OCT' }] })).toEqual(['OCT']);
  });
});

describe('reading a stored image again (no PACS running here: what a user meets when it is down)', () => {
  const wado = (url: string): EvidenceImage => image({ provenance: { via: 'wado-native', url, studyInstanceUid: '1.2.3', seriesInstanceUid: '1.2.3.4', sopInstanceUid: '1.2.3.4.5' } });

  it('an image archive that does not answer: a placeholder saying the PACS could not be reached', async () => {
    const { createGuardedFetch } = await import('../../src/net/guarded-fetch.js');
    const { freePort } = await import('../helpers/free-port.js');
    const { showStoredImage } = await import('../../launch/app-images.js');
    const base = `http://127.0.0.1:${await freePort()}/dicom-web`;
    const fetch = createGuardedFetch({ allow: [base], timeoutMs: 2_000, retry: { maxRetries: 0 } });
    try {
      expect(await showStoredImage(wado(base), 'thumb', { fetch, pacs: { baseUrl: base } })).toEqual({ kind: 'unavailable', status: 502, words: `The image could not be shown: ${reasonInWords('pacs_unreachable')}.` });
      // A stored reference to an archive off the outbound allowlist is never fetched.
      expect(await showStoredImage(wado('http://127.0.0.1:9/elsewhere'), 'thumb', { fetch })).toMatchObject({ kind: 'unavailable', status: 502 });
      // Without the instance's UIDs there is nothing to read again.
      expect(await showStoredImage(image({ provenance: { via: 'wado-native', url: base } }), 'thumb', { fetch })).toMatchObject({ kind: 'unavailable', status: 404 });
      // An attachment without FHIR access, or with a reference that is not a resource id: nothing is fetched.
      expect(await showStoredImage(image({ provenance: { via: 'fhir-attachment', url: 'Binary/1' } }), 'thumb', { fetch })).toMatchObject({ kind: 'unavailable', status: 404 });
    } finally {
      fetch.close();
    }
  });
});
