/**
 * The review page's images and earlier drafts through HTTP with a real EHR launch against the sandbox (no
 * PACS here: the images are FHIR Media attachments, read again with the session's own token): thumbnails per
 * eye with their dates, each opening a larger view; the dates beside the measurements; the order a draft
 * belongs to; the patient's other drafts with status and a link; another patient's image refused (403);
 * hostile paths and numbers refused; a source gone, corrupt or changed shown as a placeholder that says so.
 */
import { request } from 'node:http';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseSearchRequest } from '@medplum/core';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { READ_SCOPES, SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { buildTiny } from '../model/model-harness.js';
import { CookieJarClient, ehrBackendToken, fixturePatientId, startLaunchService, type CapturedService } from './smart-launch-flow.js';

let s: CapturedService;
const fixture = (key: string) => listFixturePatients().find((p) => p.key === key)!;
const CLINICIAN = 'Practitioner/dr-images-1';

beforeAll(async () => {
  const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-images-model-')) })).outDir;
  s = await startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_HOOK_WAIT_MS: '60000', VOLMO_DATABASE_URL: 'memory:' });
}, 120_000);
afterAll(async () => {
  await s?.svc.close();
});

/** Runs order-sign for the patient with one eye order; returns the analysis id the card names. */
async function analysed(patientId: string, orderId: string, order: Record<string, unknown> = eyeExamOrder(patientId, orderId)): Promise<string> {
  const sb = s.svc.sandbox!;
  const token = await ehrBackendToken(s.svc, READ_SCOPES.map((r) => `system/${r}.rs`).join(' '));
  const res = await sb.ehr.callHook({
    serviceUrl: `${s.svc.url}/cds-services/volmo-eye-exam-order-sign`,
    hook: 'order-sign',
    context: { userId: CLINICIAN, patientId, draftOrders: draftOrders(order) },
    fhirServer: sb.fhirBaseUrl,
    fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
  });
  expect(res.status).toBe(200);
  const links = (res.body as { cards: { links?: { type: string; appContext?: string }[] }[] }).cards.flatMap((c) => c.links ?? []);
  return JSON.parse(links.find((l) => l.type === 'smart')!.appContext!).analysis as string;
}

async function launch(patientId: string) {
  const sb = s.svc.sandbox!;
  const browser = new CookieJarClient();
  const q = new URLSearchParams({ iss: sb.fhirBaseUrl, launch: sb.auth.createLaunch({ patient: patientId, fhirUser: CLINICIAN }) });
  const page = await browser.follow(`${s.svc.url}/launch?${q}`);
  const appUrl = browser.hops.at(-1)!.url;
  return { browser, page, appUrl, session: new URL(appUrl).searchParams.get('session')!, cookie: cookieOf(browser) };
}

const cookieOf = (b: CookieJarClient) => b.hops.flatMap((h) => h.setCookies).map((c) => c.split(';')[0]!).join('; ');

/** A GET with the browser's cookie, the path sent exactly as written (no URL normalisation of `..`). */
function rawGet(path: string, cookie: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  const u = new URL(s.svc.url);
  return new Promise((resolve, reject) => {
    const req = request({ host: u.hostname, port: u.port, path, method: 'GET', headers: { cookie } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', reject);
    req.end();
  });
}

const unescape = (s: string) => s.replace(/&amp;/g, '&');
const thumbs = (body: string) => [...body.matchAll(/<img src="([^"]+size=thumb)" alt="([^"]+)"/g)].map((m) => ({ src: unescape(m[1]!), alt: m[2]! }));

async function search(path: string): Promise<any[]> {
  return (await s.svc.sandbox!.fhir.repo.searchResources(parseSearchRequest(path.replace(/^\//, '')))) as any[];
}

describe('the review page: images used, measurement dates, orders', () => {
  it('shows thumbnails per eye with dates (served for this session, no caching, no metadata), each opening a larger view', async () => {
    const patientId = await fixturePatientId(s.svc, fixture('diabetic').mrn);
    const id = await analysed(patientId, 'order-fundus-1');
    const { page, cookie, session } = await launch(patientId);
    expect(page.status).toBe(200);
    const body = page.body;

    // Below the summary, per eye, with the image date (as a <time> the page's script makes local).
    expect(body.indexOf('Images used')).toBeGreaterThan(body.indexOf('Summary by eye'));
    expect(body).toMatch(/<h4>Right eye<\/h4><ul class="thumbs">/);
    expect(body).toMatch(/<h4>Left eye<\/h4><ul class="thumbs">/);
    const list = thumbs(body);
    expect(list.length).toBe(2);
    expect(list.map((t) => t.alt).sort()).toEqual(['Left eye fundus photograph, 2025-03-04', 'Right eye fundus photograph, 2025-03-04']);
    expect(body).toContain('<span class="caption"><time datetime="2025-03-04T14:20:00.000Z" data-date>2025-03-04</time></span>');

    // The measurements' dates beside their values; the order the draft was made for, by name.
    expect(body).toContain('HbA1c: 8.4% <span class="when">(<time datetime="2025-02-20" data-date>2025-02-20</time>)</span>');
    expect(body).toMatch(/Blood pressure: \d+\/\d+ mmHg <span class="when">\(<time datetime="2025-03-04" data-date>2025-03-04<\/time>\)<\/span>/);
    expect(body).toContain('For the order: Fundus photography, both eyes');

    for (const t of list) {
      expect(t.src).toMatch(new RegExp(`^/app/image/${id}/\\d\\?session=${session}&size=thumb$`));
      const thumb = await rawGet(t.src, cookie);
      expect(thumb.status).toBe(200);
      expect(thumb.headers['content-type']).toBe('image/jpeg');
      expect(thumb.headers['cache-control']).toBe('private, no-store');
      const meta = await sharp(thumb.body).metadata();
      expect(meta.format).toBe('jpeg');
      expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(192);
      expect(meta.exif).toBeUndefined();
      expect(meta.icc).toBeUndefined();
      const large = await rawGet(t.src.replace('size=thumb', 'size=large'), cookie);
      expect(large.status).toBe(200);
      const lm = await sharp(large.body).metadata();
      expect(Math.max(lm.width!, lm.height!)).toBeGreaterThan(Math.max(meta.width!, meta.height!));
      expect(Math.max(lm.width!, lm.height!)).toBeLessThanOrEqual(1280);
    }

    // Each thumbnail is a link (keyboard-focusable) to a larger view page with the same alt text.
    const view = /<a href="([^"]+\/view\?session=[^"]+)"><img src="[^"]+" alt="(Right eye[^"]+)"/.exec(body)!;
    const viewPage = await rawGet(unescape(view[1]!), cookie);
    expect(viewPage.status).toBe(200);
    const html = viewPage.body.toString('utf8');
    expect(html).toContain('<h1>Right eye fundus photograph</h1>');
    expect(html).toContain(`alt="${view[2]}"`);
    expect(html).toMatch(/size=large/);
    expect(html).toContain('Back to the draft');
    expect(s.logs.join('')).not.toContain(patientId);
  });

  it("shows an ungradable image with the reason in plain words, the same words the cards use", async () => {
    const patientId = await fixturePatientId(s.svc, fixture('ungradable').mrn);
    await analysed(patientId, 'order-fundus-u');
    const { page } = await launch(patientId);
    expect(page.status).toBe(200);
    expect(page.body).toMatch(/<span class="not-usable">Not usable: (the image is too dark|the image is out of focus|no fundus is visible|the optic disc is not visible)/);
    expect(page.body).not.toMatch(/too_dark|too_blurred|no_fundus|no_disc/);
  });

  it("refuses another patient's images and draft (403), and hostile paths, numbers and sizes", async () => {
    const diabetic = await fixturePatientId(s.svc, fixture('diabetic').mrn);
    const [first] = (await launch(diabetic)).page.body.match(/data-draft-id="[^"]+"/)!;
    const id = first!.slice('data-draft-id="'.length, -1);
    const other = await launch(await fixturePatientId(s.svc, fixture('amd').mrn));

    const foreign = await rawGet(`/app/image/${id}/0?session=${other.session}&size=thumb`, other.cookie);
    expect(foreign.status).toBe(403);
    expect(foreign.headers['content-type']).toMatch(/^image\/svg\+xml/);
    expect(foreign.body.toString()).toContain('different patient');
    expect((await rawGet(`/app/image/${id}/0/view?session=${other.session}`, other.cookie)).status).toBe(403);
    expect((await rawGet(`/app?session=${other.session}&analysis=${id}`, other.cookie)).status).toBe(403);

    const mine = await launch(diabetic);
    const at = (path: string) => rawGet(path, mine.cookie).then((r) => r.status);
    expect(await at(`/app/image/${id}/0?session=${mine.session}&size=thumb`)).toBe(200);
    expect(await at(`/app/image/${id}/0?size=thumb`)).toBe(401); // no session
    expect(await at(`/app/image/${id}/0?session=${other.session}&size=thumb`)).toBe(401); // another browser's session
    expect(await at(`/app/image/../0?session=${mine.session}`)).toBe(404);
    expect(await at(`/app/image/%2E%2E%2F%2E%2E%2Fetc/0?session=${mine.session}`)).toBe(400);
    expect(await at(`/app/image/${id}/abc?session=${mine.session}`)).toBe(400);
    expect(await at(`/app/image/${id}/-1?session=${mine.session}`)).toBe(400);
    expect(await at(`/app/image/${id}/99999999999999999999?session=${mine.session}`)).toBe(400);
    expect(await at(`/app/image/${id}/9999?session=${mine.session}`)).toBe(404);
    expect(await at(`/app/image/${id}/0?session=${mine.session}&size=huge`)).toBe(400);
    expect(await at(`/app/image/${id}/0?session=${mine.session}&size=thumb&size=large`)).toBe(400);
    expect(await at(`/app/image/no-such-analysis/0?session=${mine.session}`)).toBe(404);
    expect(await at(`/app?session=${mine.session}&analysis=${encodeURIComponent('<script>')}`)).toBe(400);
  });

  it("lists the patient's other drafts with date, status and order; each opens; a filed one says so", async () => {
    const patientId = await fixturePatientId(s.svc, fixture('diabetic').mrn);
    const firstId = await analysed(patientId, 'order-fundus-1');
    // A newer HbA1c changes the clinical context: the next order is another analysis (another draft).
    await s.svc.sandbox!.fhir.repo.createResource({
      resourceType: 'Observation', status: 'final', subject: { reference: `Patient/${patientId}` },
      code: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'Hemoglobin A1c/Hemoglobin.total in Blood' }], text: 'HbA1c' },
      valueQuantity: { value: 7.1, unit: '%', system: 'http://unitsofmeasure.org', code: '%' }, effectiveDateTime: '2025-06-01T09:30:00+02:00',
    } as any);
    const secondId = await analysed(patientId, 'order-oct-2');
    expect(secondId).not.toBe(firstId);

    const { page, browser, cookie, session, appUrl } = await launch(patientId);
    expect(page.body).toMatch(new RegExp(`<section class="draft" data-draft-id="${secondId}"`));
    expect(page.body).toContain('HbA1c: 7.1% <span class="when">(<time datetime="2025-06-01T07:30:00.000Z" data-date>2025-06-01</time>)</span>');
    expect(page.body).toContain('<h2 id="earlier-drafts">Other drafts for this patient</h2>');
    expect(page.body).toContain('<p class="muted jump"><a href="#earlier-drafts">1 other draft for this patient</a></p>');
    const item = new RegExp(`<li data-draft="${firstId}"><a href="([^"]+)">Draft of <time datetime="[^"]+">[^<]+</time> \\(test model\\)</a> — <span data-status>Draft, not yet reviewed</span><br><span class="muted">Order: Fundus photography, both eyes</span></li>`).exec(page.body);
    expect(item, 'the earlier draft listed with status and order').not.toBeNull();
    expect(page.body.match(/data-draft-id=/g)).toHaveLength(1); // one draft in full, the other listed

    const opened = await rawGet(unescape(item![1]!), cookie);
    expect(opened.status).toBe(200);
    const openedBody = opened.body.toString();
    expect(openedBody).toMatch(new RegExp(`<section class="draft" data-draft-id="${firstId}"`));
    expect(openedBody).toContain(`<li data-draft="${secondId}">`);

    // Approve the first draft: the list on the second one now says it is filed.
    const v = (name: string) => new RegExp(`name="${name}" value="([^"]+)"`).exec(openedBody)?.[1];
    const res = await fetch(`${s.svc.url}/app/review`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', cookie },
      body: new URLSearchParams({ session: v('session')!, csrf: v('csrf')!, analysis: v('analysis')!, action: 'approve', conclusion: 'Filed from the list test.' }).toString(), redirect: 'manual',
    });
    expect(res.status).toBe(200);
    expect(v('analysis')).toBe(firstId);
    const again = await browser.get(appUrl);
    expect(again.body).toMatch(new RegExp(`<li data-draft="${firstId}">.*?<span data-status>Approved and filed</span>`));
    expect(session).toBeTruthy();
  });

  it('a later order for the same images is added to the same draft (same id), each order named once', async () => {
    const patientId = await fixturePatientId(s.svc, fixture('amd').mrn);
    const id = await analysed(patientId, 'order-amd-1');
    const oct = { ...eyeExamOrder(patientId, 'order-amd-2'), code: { coding: [{ system: 'http://www.ama-assn.org/go/cpt', code: '92134', display: 'OCT retina' }], text: 'OCT macula, both eyes' } };
    expect(await analysed(patientId, 'order-amd-2', oct)).toBe(id);
    expect(await analysed(patientId, 'order-amd-1')).toBe(id); // the first order again: nothing new
    const { page, cookie } = await launch(patientId);
    expect(page.body).toContain('For the orders: Fundus photography, both eyes; OCT macula, both eyes</p>');
    // This patient's OCT scans are DICOM attachments (a B-scan, a volume's central frame): they show too.
    const list = thumbs(page.body);
    expect(list.some((t) => / OCT scan, /.test(t.alt))).toBe(true);
    for (const t of list) expect((await rawGet(t.src, cookie)).headers['content-type'], t.alt).toBe('image/jpeg');
  });

  it('a source gone, damaged or changed since the analysis: a placeholder that says so, never another image', async () => {
    const patientId = await fixturePatientId(s.svc, fixture('glaucoma').mrn);
    const id = await analysed(patientId, 'order-fundus-g');
    const { cookie, session } = await launch(patientId);
    const repo = s.svc.sandbox!.fhir.repo;
    const media = await search(`/Media?subject=Patient/${patientId}`);
    expect(media.length).toBeGreaterThan(0);
    const get = async (n: number) => rawGet(`/app/image/${id}/${n}?session=${session}&size=thumb`, cookie);
    const all = async () => Promise.all(media.map((_, n) => get(n)));

    // Damaged: every Media now holds bytes that are no image.
    for (const m of media) await repo.updateResource({ ...m, content: { ...m.content, data: Buffer.from('not an image at all').toString('base64') } });
    for (const r of await all()) {
      expect(r.status).toBe(422);
      expect(r.headers['content-type']).toMatch(/^image\/svg\+xml/);
      expect(r.headers['cache-control']).toBe('private, no-store');
      expect(r.body.toString()).toContain('The image could not be shown: the file is not a JPEG, PNG or DICOM image.');
    }
    // Changed: a valid picture, but not the one analysed.
    const other = await sharp({ create: { width: 300, height: 200, channels: 3, background: '#803020' } }).jpeg().toBuffer();
    for (const m of await search(`/Media?subject=Patient/${patientId}`)) await repo.updateResource({ ...m, content: { ...m.content, data: other.toString('base64') } });
    for (const r of await all()) {
      expect(r.status).toBe(409);
      expect(r.body.toString()).toContain('has changed since the analysis');
    }
    // Gone from the record.
    for (const m of media) await repo.deleteResource('Media', m.id);
    for (const r of await all()) {
      expect(r.status).toBe(404);
      expect(r.body.toString()).toContain('no longer in the record');
      expect(r.body.toString()).not.toContain('<script');
    }
  });
});

// The DICOMweb path: where Orthanc is installed (as the Orthanc tests find it), the images are DICOM instances
// in the sandbox PACS (no Media then), read again with the configured PACS's credentials.
const orthanc = existsSync('/usr/sbin/Orthanc') && process.env.VOLMO_NO_PACS !== '1';
describe.skipIf(!orthanc)('the review page with the sandbox PACS (Orthanc)', () => {
  let p: CapturedService;
  beforeAll(async () => {
    const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-images-pacs-model-')) })).outDir;
    p = await startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_HOOK_WAIT_MS: '60000', VOLMO_DATABASE_URL: 'memory:', VOLMO_SANDBOX_PACS: 'orthanc' });
  }, 180_000);
  afterAll(async () => {
    await p?.svc.close();
  });

  it('serves each thumbnail from the PACS the analysis read it from', async () => {
    const saved = s;
    s = p; // the helpers above work on `s`
    try {
      const patientId = await fixturePatientId(s.svc, fixture('diabetic').mrn);
      expect(await search(`/Media?subject=Patient/${patientId}`)).toHaveLength(0); // DICOM only: no attachment to fall back on
      await analysed(patientId, 'order-fundus-pacs');
      const { page, cookie } = await launch(patientId);
      const list = thumbs(page.body);
      expect(list.length).toBeGreaterThan(0);
      for (const t of list) {
        const r = await rawGet(t.src, cookie);
        expect(r.status).toBe(200);
        expect(r.headers['content-type']).toBe('image/jpeg');
        const meta = await sharp(r.body).metadata();
        expect(Math.max(meta.width!, meta.height!)).toBeLessThanOrEqual(192);
      }
    } finally {
      s = saved;
    }
  });
});
