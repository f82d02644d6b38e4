/**
 * The review page as a clinician sees it in an EHR side panel (Debian's Chromium through playwright-core,
 * 480 x 800): the per-eye summary heading and the first eye's DR stage within the first screen, under a
 * compact TEST MODEL banner; plain words (no internal codes); labelled controls; dates rewritten to local time
 * by the page's nonce'd script (so the CSP lets it run); the images used below the summary (never pushing it
 * down), loaded, with eye + date alt text, the larger view opened from the keyboard, a placeholder drawn for a
 * missing image. Fails when Chromium is missing, unless VOLMO_NO_BROWSER=1.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { draftOrders, eyeExamOrder } from '../../src/sandbox/orders.js';
import { READ_SCOPES, SANDBOX_CLIENT_IDS } from '../../src/sandbox/sandbox-clients.js';
import { buildTiny } from '../model/model-harness.js';
import { ehrBackendToken, fixturePatientId, startLaunchService, type CapturedService } from './smart-launch-flow.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = process.env.VOLMO_NO_BROWSER === '1';
const CLINICIAN = 'Practitioner/dr-layout-1';

describe.skipIf(skip)('the review page in a 480 x 800 side panel', () => {
  let s: CapturedService;
  let browser: Browser;
  const patient = listFixturePatients().find((p) => p.key === 'diabetic')!;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set VOLMO_NO_BROWSER=1)`);
    const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-layout-model-')) })).outDir;
    s = await startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_HOOK_WAIT_MS: '60000' });
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  }, 120_000);
  afterAll(async () => {
    await browser?.close();
    await s?.svc.close();
  });

  it('shows the per-eye summary in the first screen, in plain words, with labelled controls and local dates', async () => {
    const sb = s.svc.sandbox!;
    const id = await fixturePatientId(s.svc, patient.mrn);
    const token = await ehrBackendToken(s.svc, READ_SCOPES.map((r) => `system/${r}.rs`).join(' '));
    const res = await sb.ehr.callHook({
      serviceUrl: `${s.svc.url}/cds-services/volmo-eye-exam-order-sign`,
      hook: 'order-sign',
      context: { userId: CLINICIAN, patientId: id, draftOrders: draftOrders(eyeExamOrder(id)) },
      fhirServer: sb.fhirBaseUrl,
      fhirAuthorization: { access_token: token.access_token, token_type: 'Bearer', expires_in: token.expires_in, scope: token.scope, subject: SANDBOX_CLIENT_IDS.backend },
    });
    expect(res.status).toBe(200);

    const context = await browser.newContext({ viewport: { width: 480, height: 800 }, timezoneId: 'America/Chicago' });
    try {
      const page = await context.newPage();
      const launch = sb.auth.createLaunch({ patient: id, fhirUser: CLINICIAN });
      await page.goto(`${s.svc.url}/launch?${new URLSearchParams({ iss: sb.fhirBaseUrl, launch })}`);
      await page.waitForURL((u) => u.pathname === '/app', { timeout: 15_000 });

      const banner = await page.locator('.test-model').boundingBox();
      expect(banner).not.toBeNull(); // the random-weights model is still announced
      expect(banner!.height).toBeLessThanOrEqual(80);

      const heading = page.getByRole('heading', { name: 'Summary by eye' }).first();
      const hb = await heading.boundingBox();
      expect(hb, 'summary heading').not.toBeNull();
      expect(hb!.y + hb!.height).toBeLessThanOrEqual(800);
      const firstStage = page.locator('.eye-summary .eye dd').first();
      const sb1 = await firstStage.boundingBox();
      expect(sb1!.y + sb1!.height).toBeLessThanOrEqual(800);
      expect(await page.locator('.eye-summary .eye h4').first().innerText()).toMatch(/^(Right|Left) eye$/);
      expect(await page.locator('.eye-summary').first().innerText()).toMatch(/Referral: /);

      const summaryText = await page.locator('.eye-summary').first().innerText();
      for (const code of ['diabetic-retinopathy', 'too_dark', 'not-assessed', 'unparseable', 'undetermined', '.png', '.dcm']) expect(summaryText).not.toContain(code);

      // Every form control has a label (the conclusion field by <label for>, buttons by their text).
      const unlabelled = await page.locator('textarea, input:not([type=hidden]), select').evaluateAll((els) => els.filter((e) => !(e as HTMLInputElement).labels?.length && !e.getAttribute('aria-label')).length);
      expect(unlabelled).toBe(0);

      // The nonce'd script ran (the CSP allowed it) and wrote the draft's date in the browser's time zone.
      const time = page.locator('time[datetime]').first();
      expect(await time.innerText()).not.toMatch(/UTC$/);
      // …and each measurement's date as a local date (a calendar date stays that day: 2025-02-20 in Chicago too).
      expect(await page.locator('.measurements li', { hasText: 'HbA1c' }).first().locator('time[data-date]').innerText()).toBe('Feb 20, 2025');

      // The images used sit below the summary (they never push it down), per eye, each thumbnail loaded.
      const summaryBox = (await page.locator('.eye-summary').first().boundingBox())!;
      const imagesBox = (await page.locator('.images').first().boundingBox())!;
      expect(imagesBox.y).toBeGreaterThanOrEqual(summaryBox.y + summaryBox.height);
      const thumbs = page.locator('.thumbs img');
      expect(await thumbs.count()).toBe(2);
      await expect.poll(() => thumbs.evaluateAll((imgs) => imgs.every((i) => (i as HTMLImageElement).complete && (i as HTMLImageElement).naturalWidth > 0)), { timeout: 15_000 }).toBe(true);
      for (const alt of await thumbs.evaluateAll((imgs) => imgs.map((i) => i.getAttribute('alt')))) expect(alt).toMatch(/^(Right|Left) eye fundus photograph, \d{4}-\d{2}-\d{2}$/);
      expect(await page.locator('.images').first().innerText()).not.toMatch(/\.jpg|\.dcm|Media\/|too_dark/);

      // Keyboard: the thumbnail links take focus in order and Enter opens the larger view, whose image loads.
      const firstLink = page.locator('.thumbs a').first();
      await firstLink.focus();
      expect(await page.evaluate(() => document.activeElement?.closest('.thumbs') !== null)).toBe(true);
      await page.keyboard.press('Enter');
      await page.waitForURL((u) => /\/app\/image\/[^/]+\/\d+\/view$/.test(u.pathname), { timeout: 15_000 });
      const large = page.locator('main.viewer img');
      await expect.poll(() => large.evaluate((i) => (i as HTMLImageElement).naturalWidth), { timeout: 15_000 }).toBeGreaterThan(192);
      expect(await large.getAttribute('alt')).toMatch(/^(Right|Left) eye fundus photograph, \d{4}-\d{2}-\d{2}$/);
      expect(await page.getByRole('heading', { level: 1 }).innerText()).toMatch(/^(Right|Left) eye fundus photograph$/);

      // A missing image's placeholder (an error status) is still drawn by the browser, so the gap says why.
      const missingSrc = (await large.getAttribute('src'))!.replace(/\/\d+\?/, '/999?');
      const drawn = await page.evaluate(async (src) => {
        const img = new Image();
        img.src = src;
        await img.decode().catch(() => undefined);
        return img.naturalWidth;
      }, missingSrc);
      expect(drawn).toBeGreaterThan(0);
    } finally {
      await context.close();
    }
  });
});
