/**
 * Issue 11, bad input: a full disk under SQLite fails writes clearly while reads go on. The disk is stood in for
 * by SQLite's own size limit (max_page_count), which fails a write exactly as a full disk does (SQLITE_FULL).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { isAppError } from '../../src/errors.js';
import { silentLogger } from '../../src/log.js';
import { DataCipher } from '../../src/store/data-key.js';
import { SqliteDriver } from '../../src/store/sql-driver.js';
import { SqlStore } from '../../src/store/sql-store.js';
import { fakeResult, tempDir } from './helpers.js';

describe('SQLite store on a full disk', () => {
  it('refuses the write that does not fit with a clear 503 error; what is stored stays readable, and replay checks refuse rather than accept', async () => {
    const driver = new SqliteDriver(join(tempDir(), 'full.db'), { maxPageCount: 64 }); // 64 pages of 4 KiB
    const store = await SqlStore.open(driver, { cipher: new DataCipher(randomBytes(32)), retention: { analysisMs: 86_400_000 }, log: silentLogger(), sweepIntervalMs: 0 });
    try {
      const save = (i: number) =>
        store.analyses.save({ id: `a${i}`, key: `k${i}`, subject: 'ehr|Patient/p1', references: [`Media/${i}`], modelSha: 'm', startedAt: Date.now(), finishedAt: Date.now(), result: fakeResult('x'.repeat(20_000)) });
      let failure: unknown;
      let saved = 0;
      for (; saved < 100; saved++) {
        try {
          await save(saved);
        } catch (e) {
          failure = e;
          break;
        }
      }
      expect(saved).toBeGreaterThan(0);
      expect(saved).toBeLessThan(100);
      expect(isAppError(failure) && failure.code).toBe('store_unavailable');
      expect((failure as Error).message).toMatch(/the database is full .*this write was refused; reads go on/);
      expect(isAppError(failure) && failure.status).toBe(503);

      // reads go on: every analysis stored before the failure, whole
      for (let i = 0; i < saved; i++) expect((await store.analyses.findById(`a${i}`))?.result.report.note.text).toHaveLength(20_000);
      expect(await store.analyses.findById(`a${saved}`)).toBeUndefined(); // nothing half-written
      // small records still fit for a while; once they do not, a JWT whose jti cannot be remembered is refused
      // with the same error, never accepted unrecorded
      let replayFailure: unknown;
      for (let i = 0; i < 50_000 && !replayFailure; i++) {
        await store.replay.checkAndRemember(`iss\u0000jti-${i}`, Date.now() + 60_000).catch((e: unknown) => (replayFailure = e));
      }
      expect(isAppError(replayFailure) && replayFailure.code).toBe('store_unavailable');
      expect(await store.analyses.findById('a0')).toBeDefined();
    } finally {
      await store.close();
    }
  });
});
