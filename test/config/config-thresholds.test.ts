/** VOLMO_FINDINGS_THRESHOLDS_FILE: read and checked at start-up, every problem named; the service's findings use it. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { resolveFindingsConfig } from '../../src/findings/config.js';
import { siteThresholdOverrides } from '../../src/findings/site-thresholds.js';

const dir = mkdtempSync(join(tmpdir(), 'volmo-thresholds-'));
function file(name: string, content: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content));
  return p;
}
const valid = {
  kind: 'volmo-findings-thresholds', version: 1, targetSensitivity: 0.9,
  screening: { amd: { lower: 0.2, upper: 0.65 }, glaucoma: { lower: 0.7, upper: 0.7 } },
  referableDr: { lower: 0.1, upper: 0.5 },
};
const problemsOf = (env: Record<string, string>): string => {
  try {
    loadConfig(env);
  } catch (e) {
    expect((e as { code?: string }).code).toBe('config_invalid');
    return (e as Error).message;
  }
  throw new Error('loadConfig accepted it');
};

describe('VOLMO_FINDINGS_THRESHOLDS_FILE', () => {
  it('a valid file is loaded and becomes per-condition bands and the referable-DR band', () => {
    const cfg = loadConfig({ VOLMO_FINDINGS_THRESHOLDS_FILE: file('ok.json', valid) });
    expect(cfg.findingsThresholds?.screening.amd).toEqual({ lower: 0.2, upper: 0.65 });
    const findings = resolveFindingsConfig(siteThresholdOverrides(cfg.findingsThresholds));
    expect(findings.conditionBands).toEqual(valid.screening);
    expect(findings.referableDrBand).toEqual({ lower: 0.1, upper: 0.5 });
    expect(findings.screeningBand).toEqual({ lower: 0.35, upper: 0.65 }); // the others keep the default
    expect(loadConfig({}).findingsThresholds).toBeUndefined();
  });

  it('a missing or unreadable file is a start-up error naming the setting', () => {
    expect(problemsOf({ VOLMO_FINDINGS_THRESHOLDS_FILE: join(dir, 'absent.json') })).toMatch(/VOLMO_FINDINGS_THRESHOLDS_FILE: cannot read .*absent\.json/);
    expect(problemsOf({ VOLMO_FINDINGS_THRESHOLDS_FILE: file('bad.json', '{"kind": ') })).toMatch(/VOLMO_FINDINGS_THRESHOLDS_FILE: cannot read/);
  });

  it('lists every bad entry, together with the other configuration problems', () => {
    const msg = problemsOf({
      VOLMO_PORT: 'eighty',
      VOLMO_FINDINGS_THRESHOLDS_FILE: file('wrong.json', {
        kind: 'volmo-findings-thresholds', version: 1,
        screening: { glaucome: { lower: 0.2, upper: 0.6 }, amd: { lower: 0.7, upper: 0.3 }, 'macular-edema': { lower: -1, upper: 0.5 } },
        referableDr: { lower: 0.1 },
        extra: true,
      }),
    });
    expect(msg).toMatch(/VOLMO_PORT/);
    expect(msg).toMatch(/invalid thresholds file/);
    expect(msg).toMatch(/glaucome/);
    expect(msg).toMatch(/screening\.amd: lower must not exceed upper/);
    expect(msg).toMatch(/screening\.macular-edema\.lower/);
    expect(msg).toMatch(/referableDr\.upper/);
    expect(msg).toMatch(/extra/);
  });

  it('refuses a file that is not a thresholds file', () => {
    expect(problemsOf({ VOLMO_FINDINGS_THRESHOLDS_FILE: file('other.json', { kind: 'volmo-eval', version: 1 }) })).toMatch(/kind/);
    expect(problemsOf({ VOLMO_FINDINGS_THRESHOLDS_FILE: file('v2.json', { ...valid, version: 2 }) })).toMatch(/version/);
  });
});
