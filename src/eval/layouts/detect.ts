/** Which layout a dataset folder has (when --layout is not given), and reading it. */
import { join } from 'node:path';
import { AppError } from '../../errors.js';
import type { Dataset, Layout } from '../types.js';
import { isDirectory, isFile } from './common.js';
import { LABELS_FILE, readCsvDataset } from './csv-layout.js';
import { findIdridCsvs, readIdridDataset } from './idrid.js';
import { octdlClassFolders, readOctdlDataset } from './octdl.js';

const DESCRIPTION =
  'csv (labels.csv naming the images), idrid (IDRiD disease-grading CSV with the images), ' +
  'octdl (one folder per OCTDL class: AMD, DME, ERM, NO, RAO, RVO, VID)';

export function detectLayout(root: string): Layout {
  const found: Layout[] = [];
  if (isFile(join(root, LABELS_FILE))) found.push('csv');
  if (octdlClassFolders(root).length > 0) found.push('octdl');
  if (findIdridCsvs(root).length > 0) found.push('idrid');
  if (found.length === 1) return found[0]!;
  if (found.length === 0) throw new AppError('bad_request', `cannot tell the dataset layout; expected one of: ${DESCRIPTION}`);
  throw new AppError('bad_request', `the dataset folder looks like several layouts (${found.join(', ')}); choose one with --layout`);
}

export function readDataset(root: string, layout?: Layout): Dataset {
  if (!isDirectory(root)) throw new AppError('bad_request', 'the dataset must be a folder');
  const l = layout ?? detectLayout(root);
  if (l === 'csv') {
    if (!isFile(join(root, LABELS_FILE))) throw new AppError('bad_request', `csv layout: ${LABELS_FILE} not found in the dataset folder`);
    return readCsvDataset(root);
  }
  return l === 'idrid' ? readIdridDataset(root) : readOctdlDataset(root);
}
