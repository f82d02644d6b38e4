/**
 * The whole clinician loop from the sandbox EHR page in a real browser (Debian's Chromium through
 * playwright-core): pick a fixture patient, sign an eye-exam order (a signed order-sign call), wait while the
 * analysis runs (the page asks again), read the card as the EHR renders it (TEST MODEL label visible), click
 * the card's smart link (a real EHR launch into the 480 px side panel), edit the conclusion, Approve & file —
 * then read back from the sandbox FHIR server, over HTTP with the EHR's own token, what was filed:
 *   fhir-standard (the sandbox default): a final DiagnosticReport with the edited text, the clinician as
 *     performer, and a Provenance with the AI Device as author and the clinician as verifier;
 *   epic: an unsigned note written in the background at analysis time (no DiagnosticReport), updated on approval;
 *   oracle: nothing before approval, a final note after.
 * Approving again creates nothing. Screenshots go to test-output/screenshots/; with VOLMO_UPDATE_SCREENSHOTS=1
 * they are also copied to docs/screenshots/ (docs/screenshots.md). Fails when Chromium is missing, unless
 * VOLMO_NO_BROWSER=1.
 */
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Frame, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_SANDBOX_USER } from '../../src/sandbox/auth-server.js';
import { ehrToken } from '../../src/sandbox/ehr-access.js';
import { EHR_PAGE_SCOPES } from '../../src/sandbox/ehr-page/server.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import type { SandboxedService } from '../../src/sandbox/service.js';
import { buildTiny } from '../model/model-harness.js';
import { fixturePatientId, startLaunchService, type CapturedService } from '../launch/smart-launch-flow.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = process.env.VOLMO_NO_BROWSER === '1';
const SHOTS = join(process.cwd(), 'test-output', 'screenshots');
const DOC_SHOTS = join(process.cwd(), 'docs', 'screenshots');
const UPDATE_DOCS = process.env.VOLMO_UPDATE_SCREENSHOTS === '1';
const BANNER = 'TEST MODEL WITH RANDOM WEIGHTS';

let browser: Browser;
let modelDir: string;

beforeAll(async () => {
  if (skip) return;
  if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set VOLMO_NO_BROWSER=1)`);
  mkdirSync(SHOTS, { recursive: true });
  modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-ehr-page-model-')) })).outDir;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}, 180_000);
afterAll(async () => {
  await browser?.close();
});

async function shot(page: Page, name: string): Promise<void> {
  const file = join(SHOTS, name);
  await page.screenshot({ path: file });
  expect(statSync(file).size).toBeGreaterThan(5_000);
  if (UPDATE_DOCS) {
    mkdirSync(DOC_SHOTS, { recursive: true });
    copyFileSync(file, join(DOC_SHOTS, name));
  }
}

/** The EHR's own read of its chart (FHIR search over HTTP with the EHR simulator's token). */
async function chartSearch(svc: SandboxedService, query: string): Promise<any[]> {
  const sb = svc.sandbox!;
  const token = await ehrToken(sb.fhirBaseUrl, sb.ehr, EHR_PAGE_SCOPES);
  const res = await fetch(`${sb.fhirBaseUrl}/${query}`, { headers: { authorization: `Bearer ${token.access_token}`, accept: 'application/fhir+json' } });
  expect(res.status, query).toBe(200);
  return (((await res.json()) as { entry?: { resource: any }[] }).entry ?? []).map((e) => e.resource);
}

/** From the EHR page: choose the patient, sign an eye-exam order, wait for the findings card (the page asks again while the analysis runs). */
async function signOrderAndWaitForFindings(page: Page, svc: SandboxedService, patientId: string) {
  await page.goto(svc.sandbox!.ehrPageUrl);
  await page.waitForFunction(() => (document.getElementById('patient') as HTMLSelectElement).options.length > 1, undefined, { timeout: 15_000 });
  await page.selectOption('#patient', patientId);
  await page.getByRole('button', { name: 'Sign an eye-exam order' }).click();
  const card = page.locator('.card[data-pending=false]').filter({ has: page.getByRole('button', { name: 'Review the AI draft in VOLMO' }) });
  await card.first().waitFor({ timeout: 150_000 });
  return card.first();
}

/** Clicks the card's smart link and waits for the app in the side panel; returns the app's frame. */
async function openFromCard(page: Page, card: ReturnType<Page['locator']>): Promise<Frame> {
  const msgs: string[] = [];
  page.on('console', (m) => msgs.push(m.text()));
  page.on('framenavigated', (f) => msgs.push(`nav ${f.url()}`));
  await card.getByRole('button', { name: 'Review the AI draft in VOLMO' }).click();
  const panel = page.frameLocator('#app');
  await panel.locator('section.draft[data-from-card="true"]').waitFor({ timeout: 30_000 }).catch(async (e) => {
    // What the browser said (CSP refusals, where the panel went): the launch's failure in words.
    throw new Error(`${(e as Error).message}\n${msgs.join('\n')}\nstatus: ${await page.locator('#status').innerText()}`);
  });
  const frame = page.frames().find((f) => new URL(f.url()).pathname === '/app');
  expect(frame, 'the app in the side panel').toBeDefined();
  return frame!;
}

/** The review form's hidden fields, to post the same form again after filing (a double submit). */
async function formFields(frame: Frame): Promise<Record<string, string>> {
  return frame.evaluate(() => Object.fromEntries([...document.querySelectorAll('form.review input[type=hidden]')].map((i) => [(i as HTMLInputElement).name, (i as HTMLInputElement).value])));
}

async function approve(frame: Frame, conclusion: string): Promise<void> {
  await frame.locator('textarea[name=conclusion]').fill(conclusion);
  await Promise.all([frame.waitForNavigation(), frame.getByRole('button', { name: 'Approve & file' }).click()]);
}

/** Posts the review form again from inside the app (same session, same CSRF token), as a second click would. */
async function approveAgain(frame: Frame, fields: Record<string, string>, conclusion: string): Promise<string> {
  await Promise.all([
    frame.waitForNavigation(),
    frame.evaluate(
      ({ fields, conclusion }) => {
        const f = document.createElement('form');
        f.method = 'post';
        f.action = '/app/review';
        for (const [name, value] of Object.entries({ ...fields, action: 'approve', conclusion })) {
          const i = document.createElement('input');
          i.type = 'hidden';
          i.name = name;
          i.value = value;
          f.appendChild(i);
        }
        document.body.appendChild(f);
        f.submit();
      },
      { fields, conclusion },
    ),
  ]);
  return frame.locator('body').innerText();
}

describe.skipIf(skip)('the sandbox EHR page drives the clinician loop (fhir-standard)', () => {
  let s: CapturedService;
  let context: BrowserContext;
  const patient = listFixturePatients().find((p) => p.key === 'diabetic')!;

  beforeAll(async () => {
    s = await startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_DATABASE_URL: 'memory:' });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  }, 120_000);
  afterAll(async () => {
    await context?.close();
    await s?.svc.close();
  });

  it('signs an order, shows the card, launches from its smart link, and files the edited report once', async () => {
    const svc = s.svc;
    const patientId = await fixturePatientId(svc, patient.mrn);
    const page = await context.newPage();
    const card = await signOrderAndWaitForFindings(page, svc, patientId);

    // The card as the EHR renders it: the random-weights label in the summary, the detail and the source.
    expect(await card.locator('h3').innerText()).toContain(BANNER);
    expect(await card.locator('.detail blockquote').first().innerText()).toContain(BANNER);
    expect(await card.locator('.source').innerText()).toContain('test model');
    expect(await card.locator('.detail script, .detail img, .detail iframe').count()).toBe(0);
    expect(await page.locator('#status').innerText()).toMatch(/order-sign: \d+ cards?\./);
    // Nothing is filed before the clinician acts.
    expect(await chartSearch(svc, `DiagnosticReport?subject=Patient/${patientId}&status=final`)).toHaveLength(0);
    await shot(page, 'ehr-page-card.png');

    const frame = await openFromCard(page, card);
    expect(await frame.locator('[role=banner]').innerText()).toContain(patient.name);
    expect(await frame.locator('.test-model').first().innerText()).toContain(BANNER);
    const appUrl = frame.url();
    await shot(page, 'ehr-page-with-app.png');

    // The app alone, on a desktop and at 480 x 800 (the same browser: the session is bound to it).
    for (const [name, viewport] of [['app-desktop.png', { width: 1280, height: 900 }], ['app-480.png', { width: 480, height: 800 }]] as const) {
      const p = await context.newPage();
      await p.setViewportSize(viewport);
      await p.goto(appUrl);
      await p.locator('section.draft').first().waitFor();
      await shot(p, name);
      await p.close();
    }

    const edited = 'Edited in the sandbox EHR panel: moderate NPDR right eye, refer to ophthalmology within 3 months.';
    const editedPlan = 'Assessment: moderate NPDR OD. Plan: ophthalmology referral within 3 months; HbA1c review with primary care.';
    const fields = await formFields(frame);
    // The assessment and plan field starts with the draft's plan; the clinician rewrites it.
    expect(await frame.locator('textarea[name=assessmentPlan]').inputValue()).not.toBe('');
    await frame.locator('textarea[name=assessmentPlan]').fill(editedPlan);
    await approve(frame, edited);
    expect(await frame.locator('body').innerText()).toContain('Approved and filed');

    const reports = await chartSearch(svc, `DiagnosticReport?subject=Patient/${patientId}`);
    expect(reports).toHaveLength(1);
    expect(reports[0]).toMatchObject({ status: 'final', performer: [{ reference: DEFAULT_SANDBOX_USER }], resultsInterpreter: [{ reference: DEFAULT_SANDBOX_USER }] });
    expect(reports[0].conclusion).toContain(edited);
    expect(reports[0].conclusion).toMatch(new RegExp(`^${BANNER}`));
    expect(Buffer.from(reports[0].presentedForm[0].data, 'base64').toString('utf8')).toContain(`Assessment and plan (as reviewed):\n${editedPlan}`);
    const provenances = await chartSearch(svc, `Provenance?target=DiagnosticReport/${reports[0].id}`);
    const signed = provenances.filter(
      (p) =>
        p.agent.some((a: any) => a.type?.coding?.[0]?.code === 'author' && /^Device\//.test(a.who?.reference)) &&
        p.agent.some((a: any) => a.type?.coding?.[0]?.code === 'verifier' && a.who?.reference === DEFAULT_SANDBOX_USER),
    );
    expect(signed).toHaveLength(1);

    // The EHR page's chart shows the final report with the edited text.
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => page.locator('#chart-list li[data-type=DiagnosticReport][data-status=final]').count()).toBe(1);
    const filed = page.locator('#chart-list li[data-type=DiagnosticReport]');
    expect(await filed.innerText()).toContain(edited);
    await filed.scrollIntoViewIfNeeded();
    await shot(page, 'ehr-page-filed.png');

    // Approving again (the same form posted a second time) creates nothing new.
    const count = async () => (await Promise.all([
      chartSearch(svc, `DiagnosticReport?subject=Patient/${patientId}`),
      chartSearch(svc, `Provenance?target=DiagnosticReport/${reports[0].id}`),
      chartSearch(svc, `Observation?subject=Patient/${patientId}&_count=200`),
    ])).map((l) => l.length);
    const before = await count();
    const again = await approveAgain(frame, fields, 'A different text the second time');
    expect(again).toContain('already filed; nothing was changed');
    expect(await count()).toEqual(before);
    const after = await chartSearch(svc, `DiagnosticReport?subject=Patient/${patientId}`);
    expect(after[0].conclusion).toContain(edited);
    await page.close();
  }, 300_000);
  it('opens the chart (patient-view) and launches VOLMO from the button, in the panel and in a new tab', async () => {
    const svc = s.svc;
    const glaucoma = listFixturePatients().find((p) => p.key === 'glaucoma')!;
    const patientId = await fixturePatientId(svc, glaucoma.mrn);
    const page = await context.newPage();
    await page.goto(svc.sandbox!.ehrPageUrl);
    await page.waitForFunction(() => (document.getElementById('patient') as HTMLSelectElement).options.length > 1, undefined, { timeout: 15_000 });
    await page.selectOption('#patient', patientId);
    expect(await page.locator('#banner').innerText()).toContain(glaucoma.name);
    await page.getByRole('button', { name: 'Open the chart' }).click();
    await expect.poll(() => page.locator('#status').innerText(), { timeout: 150_000 }).toMatch(/^patient-view: \d+ cards?\./);

    await page.getByRole('button', { name: 'Launch VOLMO', exact: true }).click();
    await page.frameLocator('#app').locator('[role=banner]').filter({ hasText: glaucoma.name }).waitFor({ timeout: 30_000 });

    const [tab] = await Promise.all([context.waitForEvent('page'), page.getByRole('button', { name: 'Launch VOLMO in a new tab' }).click()]);
    await tab.waitForURL((u) => u.pathname === '/app', { timeout: 30_000 });
    expect(await tab.locator('[role=banner]').innerText()).toContain(glaucoma.name);
    // A launch from the button names no draft: the app lists the patient's drafts, none "opened from the card".
    expect(await tab.locator('section.draft[data-from-card="true"]').count()).toBe(0);
    await tab.close();
    await page.close();
  }, 300_000);
});

describe.skipIf(skip)('the sandbox EHR page drives the clinician loop (oracle)', () => {
  let s: CapturedService;
  let context: BrowserContext;
  const patient = listFixturePatients().find((p) => p.key === 'amd')!;

  beforeAll(async () => {
    s = await startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_DATABASE_URL: 'memory:', VOLMO_SANDBOX_EHR_PROFILE: 'oracle' });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  }, 120_000);
  afterAll(async () => {
    await context?.close();
    await s?.svc.close();
  });

  it('writes nothing before approval and a final note after, once', async () => {
    const svc = s.svc;
    const patientId = await fixturePatientId(svc, patient.mrn);
    const notesBefore = await chartSearch(svc, `DocumentReference?subject=Patient/${patientId}`);
    const page = await context.newPage();
    const card = await signOrderAndWaitForFindings(page, svc, patientId);
    expect(await card.locator('h3').innerText()).toContain(BANNER);

    // Analysis done, card shown: the Oracle-like EHR holds nothing from the AI yet.
    expect(await chartSearch(svc, `DiagnosticReport?subject=Patient/${patientId}`)).toHaveLength(0);
    expect(await chartSearch(svc, `DocumentReference?subject=Patient/${patientId}`)).toHaveLength(notesBefore.length);

    const frame = await openFromCard(page, card);
    const fields = await formFields(frame);
    const edited = 'Edited for the Oracle-like sandbox: no AMD seen; routine follow-up.';
    await approve(frame, edited);
    expect(await frame.locator('body').innerText()).toContain('Approved and filed');

    const notes = await chartSearch(svc, `DocumentReference?subject=Patient/${patientId}`);
    const added = notes.filter((n) => !notesBefore.some((b) => b.id === n.id));
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ status: 'current', docStatus: 'final', author: [{ reference: DEFAULT_SANDBOX_USER }] });
    expect(Buffer.from(added[0].content[0].attachment.data, 'base64').toString('utf8')).toContain(edited);
    expect(await chartSearch(svc, `DiagnosticReport?subject=Patient/${patientId}`)).toHaveLength(0);

    const again = await approveAgain(frame, fields, 'Something else');
    expect(again).toContain('already filed; nothing was changed');
    expect(await chartSearch(svc, `DocumentReference?subject=Patient/${patientId}`)).toHaveLength(notes.length);
    await page.close();
  }, 300_000);
});

describe.skipIf(skip)('the sandbox EHR page drives the clinician loop (epic)', () => {
  let s: CapturedService;
  let context: BrowserContext;
  const patient = listFixturePatients().find((p) => p.key === 'diabetic')!;

  beforeAll(async () => {
    // Durable store (the launch service's SQLite default): the background draft is a job on it.
    s = await startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_SANDBOX_EHR_PROFILE: 'epic', VOLMO_JOB_POLL_MS: '100' });
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  }, 120_000);
  afterAll(async () => {
    await context?.close();
    await s?.svc.close();
  });

  it('an unsigned note appears at analysis time (no DiagnosticReport); approval updates that note, once', async () => {
    const svc = s.svc;
    const patientId = await fixturePatientId(svc, patient.mrn);
    const notesBefore = await chartSearch(svc, `DocumentReference?subject=Patient/${patientId}`);
    const page = await context.newPage();
    const card = await signOrderAndWaitForFindings(page, svc, patientId).catch((e) => {
      throw new Error(`${(e as Error).message}\n${s.logs.slice(-30).map((l) => l.slice(0, 400)).join('')}`);
    });
    expect(await card.locator('h3').innerText()).toContain(BANNER);

    // Written in the background by Backend Services, before anyone opens the app: one preliminary note in the encounter.
    let added: any[] = [];
    for (const deadline = Date.now() + 60_000; added.length === 0 && Date.now() < deadline; await new Promise((r) => setTimeout(r, 250))) {
      added = (await chartSearch(svc, `DocumentReference?subject=Patient/${patientId}`)).filter((n) => !notesBefore.some((b) => b.id === n.id));
    }
    expect(added).toHaveLength(1);
    expect(added[0]).toMatchObject({ status: 'current', docStatus: 'preliminary' });
    expect(added[0].context?.encounter?.[0]?.reference).toMatch(/^Encounter\//);
    expect(await chartSearch(svc, `DiagnosticReport?subject=Patient/${patientId}`)).toHaveLength(0);

    const frame = await openFromCard(page, card);
    const fields = await formFields(frame);
    const edited = 'Edited for the Epic-like sandbox: mild NPDR both eyes; rescreen in 12 months.';
    await approve(frame, edited);
    expect(await frame.locator('body').innerText()).toContain('Approved and filed');

    const notes = (await chartSearch(svc, `DocumentReference?subject=Patient/${patientId}`)).filter((n) => !notesBefore.some((b) => b.id === n.id));
    expect(notes.map((n) => n.id)).toEqual([added[0].id]);
    expect(notes[0]).toMatchObject({ docStatus: 'preliminary', author: [{ reference: DEFAULT_SANDBOX_USER }] });
    expect(Buffer.from(notes[0].content[0].attachment.data, 'base64').toString('utf8')).toContain(edited);
    expect(await chartSearch(svc, `DiagnosticReport?subject=Patient/${patientId}`)).toHaveLength(0);

    const again = await approveAgain(frame, fields, 'Something else');
    expect(again).toContain('already filed; nothing was changed');
    expect((await chartSearch(svc, `DocumentReference?subject=Patient/${patientId}`)).length).toBe(notesBefore.length + 1);
    await page.close();
  }, 300_000);
});
