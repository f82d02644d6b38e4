import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { candidateGrids, planTiles, PreprocessError } from '../../src/model/preprocess/index.js';

// Reference: scripts/preprocess/reference.py (InternVL's dynamic_preprocess, run by CPython 3.11).
const TABLE = JSON.parse(readFileSync(join(import.meta.dirname, '../../fixtures/preprocess/tiling-table.json'), 'utf8')) as {
  candidateOrders: Record<string, [number, number][]>;
  cases: { width: number; height: number; minTiles?: number; maxTiles: number; imageSize?: number; useThumbnail?: boolean; grid: [number, number]; tiles: number }[];
};

describe('candidate grid order', () => {
  it('max 6 is the CPython order given in volmo-model.md 1.2', () => {
    expect(candidateGrids(1, 6)).toEqual([[1, 1], [1, 2], [2, 1], [3, 1], [1, 3], [4, 1], [1, 4], [2, 2], [1, 5], [5, 1], [6, 1], [2, 3], [1, 6], [3, 2]]);
  });

  it('every (min, max <= 12) order equals the Python reference', () => {
    expect(Object.keys(TABLE.candidateOrders)).toHaveLength(78);
    for (const [key, order] of Object.entries(TABLE.candidateOrders)) {
      const [lo, hi] = key.split('-').map(Number);
      expect(candidateGrids(lo, hi)).toEqual(order);
    }
  });
});

describe('planTiles', () => {
  it.each(TABLE.cases.map((c) => [`${c.width}x${c.height} min ${c.minTiles ?? 1} max ${c.maxTiles}${c.imageSize ? ` size ${c.imageSize}` : ''}${c.useThumbnail === false ? ' no thumb' : ''}`, c] as const))(
    '%s matches the reference', (_n, c) => {
      const p = planTiles(c.width, c.height, { minTiles: c.minTiles, maxTiles: c.maxTiles, imageSize: c.imageSize, useThumbnail: c.useThumbnail });
      expect(p.grid).toEqual(c.grid);
      expect(p.tiles).toBe(c.tiles);
    });

  it('reproduces the worked examples and the equal-ratio area rule', () => {
    expect(planTiles(633, 633).tiles).toBe(1); // (1,1) vs (2,2) tie: 633^2 <= 0.5*448^2*4
    expect(planTiles(634, 634)).toMatchObject({ grid: [2, 2], tiles: 5, thumbnail: true, resizeWidth: 896, resizeHeight: 896 });
    for (const [w, h] of [[800, 600], [1536, 1024], [3888, 2592]]) expect(planTiles(w, h)).toMatchObject({ grid: [3, 2], tiles: 7 });
    expect(planTiles(800, 600, { useThumbnail: false }).tiles).toBe(6);
  });

  it('rejects bad sizes and unsupported tile ranges', () => {
    expect(() => planTiles(0, 10)).toThrow(PreprocessError);
    expect(() => planTiles(10.5, 10)).toThrow(/positive integer/);
    expect(() => planTiles(10, 10, { maxTiles: 13 })).toThrow(/maxTiles/);
    expect(() => planTiles(10, 10, { minTiles: 4, maxTiles: 3 })).toThrow(PreprocessError);
  });
});
