/**
 * OCTDL layout (Kulyabin et al., Sci Data 2024): one folder per class holding OCT B-scans (modality OPT).
 * Classes and their VOLMO screening labels (one class per image in OCTDL):
 *   AMD  age-related macular degeneration -> amd TRUE
 *   DME  diabetic macular edema           -> macular-edema TRUE, diabetic-retinopathy TRUE
 *   RVO  retinal vein occlusion           -> retinal-vascular-occlusion TRUE
 *   RAO  retinal artery occlusion         -> retinal-vascular-occlusion TRUE
 *   NO   normal                           -> amd, macular-edema, retinal-vascular-occlusion FALSE
 *   ERM  epiretinal membrane              -> no VOLMO condition
 *   VID  vitreomacular interface disease  -> no VOLMO condition (no macular-hole stage is given)
 * Only NO gives negatives: another class says nothing certain about the other conditions. Laterality is
 * not read (unknown). Note that the service asks the 12 screening questions about fundus photographs
 * only, so on OCT these labels are reported as not assessed.
 */
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../../errors.js';
import type { ConditionId } from '../../findings/tasks.js';
import type { Dataset, EvalItem } from '../types.js';
import { IMAGE_EXTENSIONS, listFiles } from './common.js';

export const OCTDL_CLASSES: Readonly<Record<string, Partial<Record<ConditionId, boolean>>>> = Object.freeze({
  AMD: { amd: true },
  DME: { 'macular-edema': true, 'diabetic-retinopathy': true },
  RVO: { 'retinal-vascular-occlusion': true },
  RAO: { 'retinal-vascular-occlusion': true },
  NO: { amd: false, 'macular-edema': false, 'retinal-vascular-occlusion': false },
  ERM: {},
  VID: {},
});

/** The class folders directly under `root`. */
export function octdlClassFolders(root: string): string[] {
  return readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory() && e.name in OCTDL_CLASSES).map((e) => e.name).sort();
}

export function readOctdlDataset(root: string): Dataset {
  const folders = readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name);
  const unknown = folders.filter((f) => !(f in OCTDL_CLASSES));
  if (unknown.length) {
    throw new AppError('bad_request', `OCTDL layout: unknown class folder(s) ${unknown.map((u) => `"${u}"`).join(', ')}; known: ${Object.keys(OCTDL_CLASSES).join(', ')}`);
  }
  const items: EvalItem[] = [];
  let ignored = 0;
  for (const cls of octdlClassFolders(root)) {
    for (const rel of listFiles(root, join(root, cls))) {
      if (!IMAGE_EXTENSIONS.test(rel)) {
        ignored++;
        continue;
      }
      items.push({ key: rel, file: join(root, rel), eye: 'unknown', modality: 'OPT', labels: { conditions: { ...OCTDL_CLASSES[cls] } } });
    }
  }
  if (items.length === 0) throw new AppError('bad_request', 'OCTDL layout: no images in the class folders');
  const notes = [
    'OCTDL classes mapped to VOLMO conditions: AMD -> AMD; DME -> macular edema and diabetic retinopathy; RVO, RAO -> retinal vascular occlusion; NO -> negative for AMD, macular edema and retinal vascular occlusion; ERM, VID -> none.',
    'The service asks the screening questions about fundus photographs only: on these OCT images it stages macular holes, and the condition labels are reported as not assessed.',
  ];
  if (ignored) notes.push(`${ignored} non-image file(s) in the class folders were ignored.`);
  return { layout: 'octdl', root, items, notes };
}
