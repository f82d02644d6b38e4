export { planTiles, candidateGrids, closestGrid, MAX_SUPPORTED_TILES } from './tiling.js';
export type { TileOptions, TilePlan } from './tiling.js';
export { preprocessImage, resizeForPlan, DEFAULT_MAX_INPUT_PIXELS } from './image.js';
export type { PreprocessOptions, PreprocessedImage } from './image.js';
export { normalizeLut, DEFAULT_MEAN, DEFAULT_STD } from './normalize.js';
export { PreprocessError } from './errors.js';
export type { PreprocessFailure } from './errors.js';
