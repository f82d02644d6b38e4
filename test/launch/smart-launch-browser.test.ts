/**
 * The SMART EHR launch in a real browser (Debian's Chromium through playwright-core): the redirects, the
 * authorization server's cookies and this service's session cookie as a browser really handles them.
 * Fails when Chromium is missing, unless VOLMO_NO_BROWSER=1.
 */
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { chromium, type Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { fixturePatientId, startLaunchService, type CapturedService } from './smart-launch-flow.js';

const CHROMIUM = '/usr/bin/chromium';
const skip = process.env.VOLMO_NO_BROWSER === '1';

describe.skipIf(skip)('SMART EHR launch in Chromium', () => {
  let s: CapturedService;
  let browser: Browser;
  const patient = listFixturePatients().find((p) => p.key === 'amd')!;

  beforeAll(async () => {
    if (!existsSync(CHROMIUM)) throw new Error(`${CHROMIUM} is missing: apt-get install -y chromium (or set VOLMO_NO_BROWSER=1)`);
    s = await startLaunchService();
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    });
  });
  afterAll(async () => {
    await browser?.close();
    await s?.svc.close();
  });

  it('follows the launch to /app and shows the launched patient', async () => {
    const id = await fixturePatientId(s.svc, patient.mrn);
    const launch = s.svc.sandbox!.auth.createLaunch({ patient: id });
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      await page.goto(`${s.svc.url}/launch?${new URLSearchParams({ iss: s.svc.sandbox!.fhirBaseUrl, launch })}`);
      await page.waitForURL((u) => u.pathname === '/app', { timeout: 15_000 });
      expect(new URL(page.url()).searchParams.get('session')).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(await page.locator('[role=banner]').innerText()).toContain(patient.name);
      expect(await page.locator('.notice').innerText()).toContain('signing is not available yet');
      const cookies = await context.cookies(`${s.svc.url}/app`);
      const session = cookies.find((c) => c.name === 'volmo_browser')!;
      expect(session.httpOnly).toBe(true);
      expect(session.sameSite).toBe('Lax');
    } finally {
      await context.close();
    }
  });

  it('cannot be framed by an origin that is not configured (CSP frame-ancestors)', async () => {
    const target = `${s.svc.url}/app?session=${'a'.repeat(43)}`;
    const framer = http.createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end(`<!doctype html><iframe id="f" src="${target}"></iframe>`));
    await new Promise<void>((r) => framer.listen(0, '127.0.0.1', r));
    const context = await browser.newContext();
    try {
      const page = await context.newPage();
      // Same host, another port: another origin, not listed.
      const blocked = page.waitForEvent('console', { predicate: (m) => /frame-ancestors/.test(m.text()), timeout: 10_000 });
      await page.goto(`http://127.0.0.1:${(framer.address() as AddressInfo).port}/`);
      expect((await blocked).text()).toContain('frame-ancestors');
      const frame = page.frames().find((f) => f !== page.mainFrame())!;
      expect(await frame.content()).not.toContain('Session not found');
      // The app itself, opened directly, renders.
      await page.goto(target);
      expect(await page.locator('h1').innerText()).toBe('Session not found');
    } finally {
      await context.close();
      await new Promise((r) => framer.close(r));
    }
  });
});
