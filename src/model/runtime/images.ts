/**
 * Encoded image bytes -> normalised tiles, through the preprocessing module (src/model/preprocess/), with
 * the manifest's tile size, tile limit, thumbnail rule and normalisation.
 */
import type { Manifest } from '../manifest.js';
import { preprocessImage } from '../preprocess/index.js';
import type { ImageTiles } from './types.js';

export async function tilesForModel(bytes: Uint8Array, manifest: Manifest, maxTiles?: number): Promise<ImageTiles> {
  const p = await preprocessImage(bytes, {
    imageSize: manifest.imageSize,
    maxTiles: maxTiles ?? manifest.maxTiles,
    useThumbnail: manifest.useThumbnail,
    mean: manifest.normalize.mean,
    std: manifest.normalize.std,
  });
  return { tiles: p.pixelValues, tileCount: p.tiles };
}
