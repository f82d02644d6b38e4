/**
 * Issue 14, "Keep it found": the privacy test. The real service with its sandbox and the tiny TEST MODEL logs
 * at debug level into memory while every fixture patient goes through every hook (order-sign, order-select,
 * patient-view) with prefetch and token, token only, and prefetch only, and a SMART launch opens the app.
 * Then every captured line is scanned for the fixtures' names, MRNs, birth dates, FHIR patient ids, the
 * tokens used and anything shaped like a JWT or a bearer credential: none may appear.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ehrToken, sandboxHookCall, type EhrToken } from '../../src/sandbox/ehr-access.js';
import { listFixturePatients } from '../../src/sandbox/fixtures.js';
import { READ_SCOPES } from '../../src/sandbox/sandbox-clients.js';
import { buildTiny } from '../model/model-harness.js';
import { CookieJarClient, fixturePatientId, startLaunchService, type CapturedService } from '../launch/smart-launch-flow.js';

export interface Needle {
  what: string;
  pattern: RegExp;
}

const escape = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const exact = (what: string, s: string): Needle => ({ what, pattern: new RegExp(`(?<![A-Za-z0-9])${escape(s)}(?![A-Za-z0-9])`) });

/** Every log line that contains any needle, with what it contained (the line itself is not repeated). */
export function findLeaks(lines: string[], needles: Needle[]): string[] {
  const out: string[] = [];
  lines.forEach((line, i) => {
    for (const n of needles) if (n.pattern.test(line)) out.push(`line ${i + 1}: ${n.what}`);
  });
  return out;
}

const GENERIC: Needle[] = [
  { what: 'a JWT', pattern: /eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\./ },
  { what: 'a bearer credential', pattern: /\bBearer\s+(?!\[redacted\])[A-Za-z0-9._~+/=-]{8,}/i },
];

const fixtures = listFixturePatients();
let s: CapturedService;
let token: EhrToken;
let closed = false;
const imageStatuses: number[] = [];
const ids = new Map<string, string>();
const calls: { key: string; hook: string; mode: string; status: number }[] = [];

beforeAll(async () => {
  const modelDir = (await buildTiny({ root: mkdtempSync(join(tmpdir(), 'volmo-privacy-model-')) })).outDir;
  s = await startLaunchService({ VOLMO_MODEL_DIR: modelDir, VOLMO_HOOK_WAIT_MS: '60000', VOLMO_SANDBOX_PACS: process.env.VOLMO_NO_PACS === '1' ? 'none' : 'orthanc' });
  const sb = s.svc.sandbox!;
  token = await ehrToken(sb.fhirBaseUrl, sb.ehr, READ_SCOPES.map((r) => `system/${r}.rs`));
  for (const p of fixtures) ids.set(p.key, await fixturePatientId(s.svc, p.mrn));
  const modes = [
    { mode: 'prefetch+token', prefetch: true, withToken: true },
    { mode: 'token only', prefetch: false, withToken: true },
    { mode: 'prefetch only', prefetch: true, withToken: false },
  ];
  for (const p of fixtures) {
    for (const hook of ['order-sign', 'order-select', 'patient-view'] as const) {
      for (const m of modes) {
        const call = await sandboxHookCall({ serviceBaseUrl: s.svc.url, fhirBaseUrl: sb.fhirBaseUrl, token, patientId: ids.get(p.key)!, hook, ...m });
        calls.push({ key: p.key, hook, mode: m.mode, status: (await sb.ehr.callHook(call)).status });
      }
    }
  }
  // A SMART launch for one patient, through the real authorization server, to the app page.
  const launch = sb.auth.createLaunch({ patient: ids.get('diabetic')! });
  const browser = new CookieJarClient();
  const page = await browser.follow(`${s.svc.url}/launch?${new URLSearchParams({ iss: sb.fhirBaseUrl, launch })}`);
  calls.push({ key: 'diabetic', hook: 'smart-launch', mode: 'app', status: page.status });
  // …and the images it shows: each thumbnail, its larger view, and one the draft does not have.
  const links = [...page.body.matchAll(/(?:src|href)="(\/app\/image\/[^"]+)"/g)].map((m) => m[1]!.replace(/&amp;/g, '&'));
  for (const l of [...links, links[0]?.replace(/\/\d+([/?])/, '/9999$1')].filter((l): l is string => Boolean(l))) imageStatuses.push((await browser.get(`${s.svc.url}${l}`)).status);
  await s.svc.close(); // flushes: every line is in s.logs before the scan
  closed = true;
}, 600_000);
afterAll(async () => {
  if (!closed) await s?.svc.close();
});

describe('privacy: no PHI or token in any debug log line of the end-to-end run', () => {
  it('every hook call and the launch were answered', () => {
    expect(calls).toHaveLength(fixtures.length * 9 + 1);
    expect(calls.filter((c) => c.status !== 200)).toEqual([]);
  });

  it("the app's images were served (and one not there refused) in the same run", () => {
    expect(imageStatuses.length).toBeGreaterThanOrEqual(3);
    expect(imageStatuses.slice(0, -1).every((st) => st === 200)).toBe(true);
    expect(imageStatuses.at(-1)).toBe(404);
  });

  it('the run logged at debug level, including analyses by the TEST MODEL', () => {
    const lines = s.logs.join('').split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(100);
    expect(lines.some((l) => l.includes('"level":"debug"'))).toBe(true);
    expect(lines.some((l) => /TEST MODEL WITH RANDOM WEIGHTS/.test(l))).toBe(true);
  });

  it('no name, MRN, birth date, patient id, token or JWT appears in any line', () => {
    const lines = s.logs.join('').split('\n').filter(Boolean);
    const needles: Needle[] = [
      ...GENERIC,
      exact('the EHR access token', token.access_token),
      ...fixtures.flatMap((p) => [
        ...p.name.split(/\s+/).map((part) => exact(`${p.key}: name part`, part)),
        exact(`${p.key}: MRN`, p.mrn),
        exact(`${p.key}: birth date`, p.birthDate),
        exact(`${p.key}: birth date (DICOM)`, p.birthDate.replaceAll('-', '')),
        exact(`${p.key}: FHIR patient id`, ids.get(p.key)!),
      ]),
    ];
    expect(findLeaks(lines, needles)).toEqual([]);
  });

  it('the scanner finds what it looks for (so the test above can fail)', () => {
    const p = fixtures[0]!;
    const bad = [`{"msg":"read Patient ${ids.get(p.key)}"}`, `{"who":"${p.name}"}`, `{"h":"Bearer abcdefgh12345"}`, `{"mrn":"${p.mrn}","dob":"${p.birthDate}"}`];
    const needles = [...GENERIC, exact('id', ids.get(p.key)!), ...p.name.split(' ').map((x) => exact('name', x)), exact('mrn', p.mrn), exact('dob', p.birthDate)];
    expect(findLeaks(bad, needles)).toEqual(['line 1: id', 'line 2: name', 'line 2: name', 'line 3: a bearer credential', 'line 4: mrn', 'line 4: dob']);
  });
});
