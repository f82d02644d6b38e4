/** InternVL `dynamic_preprocess` tiling plan (volmo-model.md 1.2), exactly: candidate order, tie rule, thumbnail. */
import { CANDIDATE_GRIDS } from './candidate-grids.js';
import { PreprocessError } from './errors.js';

export interface TileOptions {
  minTiles?: number;
  maxTiles?: number;
  imageSize?: number;
  useThumbnail?: boolean;
}

export interface TilePlan {
  /** [cols, rows] of the grid the image is resized to (imageSize*cols x imageSize*rows). */
  grid: [number, number];
  /** Tiles fed to the vision model: cols*rows, plus the thumbnail when that is more than one. */
  tiles: number;
  thumbnail: boolean;
  /** Resize target of the whole image for the grid, in pixels. */
  resizeWidth: number;
  resizeHeight: number;
  imageSize: number;
}

export const MAX_SUPPORTED_TILES = 12;

/** Candidate grids [cols, rows] in the order CPython iterates them (sorted by area, set order within an area). */
export function candidateGrids(minTiles: number, maxTiles: number): [number, number][] {
  const key = `${minTiles}-${maxTiles}`;
  const table = CANDIDATE_GRIDS[key];
  if (table === undefined) {
    throw new PreprocessError('bad_options', `tiling supports 1 <= minTiles <= maxTiles <= ${MAX_SUPPORTED_TILES}, got ${minTiles}..${maxTiles}`);
  }
  return table.split(' ').map((g) => g.split('x').map(Number) as [number, number]);
}

/** find_closest_aspect_ratio: smallest |aspect - cols/rows|; on an exact tie the later grid wins only if area > half its pixels. */
export function closestGrid(width: number, height: number, grids: readonly [number, number][], imageSize: number): [number, number] {
  const aspect = width / height;
  const area = width * height;
  let bestDiff = Infinity;
  let best: [number, number] = [1, 1];
  for (const g of grids) {
    const diff = Math.abs(aspect - g[0] / g[1]);
    if (diff < bestDiff) {
      bestDiff = diff;
      best = g;
    } else if (diff === bestDiff && area > 0.5 * imageSize * imageSize * g[0] * g[1]) {
      best = g;
    }
  }
  return best;
}

export function planTiles(width: number, height: number, opts: TileOptions = {}): TilePlan {
  const { minTiles = 1, maxTiles = 6, imageSize = 448, useThumbnail = true } = opts;
  for (const [name, v] of [['width', width], ['height', height], ['imageSize', imageSize]] as const) {
    if (!Number.isInteger(v) || v <= 0) throw new PreprocessError('bad_options', `${name} must be a positive integer, got ${v}`);
  }
  const grid = closestGrid(width, height, candidateGrids(minTiles, maxTiles), imageSize);
  const blocks = grid[0] * grid[1];
  const thumbnail = useThumbnail && blocks !== 1;
  return {
    grid: [grid[0], grid[1]],
    tiles: blocks + (thumbnail ? 1 : 0),
    thumbnail,
    resizeWidth: imageSize * grid[0],
    resizeHeight: imageSize * grid[1],
    imageSize,
  };
}
