/**
 * Versioned task definitions: VOLMO's own prompt wording (GitHub Yale-BIDS-Chen-Lab/volmo,
 * data/datajsons/{bool,stage,imgdesc,assessplan}/*.json). Data only; planning lives in plan.ts.
 * Bump TASK_SET_VERSION whenever a prompt, vocabulary or candidate set changes.
 */

export const TASK_SET_VERSION = 'volmo-tasks/1.0.0';

export type ConditionId =
  | 'amd' | 'diabetic-retinopathy' | 'hypertensive-retinopathy' | 'increased-cup-to-disc-ratio'
  | 'choroidal-nevus' | 'macular-edema' | 'myopic-fundus-changes' | 'retinal-drusen'
  | 'retinal-hemorrhage' | 'retinal-scarring' | 'retinal-vascular-occlusion' | 'glaucoma';

export interface ConditionDefinition {
  id: ConditionId;
  /** The {CONDITION} string exactly as in VOLMO's bool JSONs. */
  promptText: string;
  /** Short display label for notes. */
  label: string;
  /** VOLMO bool data file(s) the wording comes from. */
  source: string;
}

export const CONDITIONS: readonly ConditionDefinition[] = [
  { id: 'amd', promptText: 'age-related macular degeneration (AMD)', label: 'Age-related macular degeneration', source: 'biobank_amd.json, brset_amd.json' },
  { id: 'diabetic-retinopathy', promptText: 'diabetic retinopathy', label: 'Diabetic retinopathy', source: 'biobank_dr.json, brset_dr.json' },
  { id: 'hypertensive-retinopathy', promptText: 'hypertensive retinopathy', label: 'Hypertensive retinopathy', source: 'brset_hypertension.json' },
  { id: 'increased-cup-to-disc-ratio', promptText: 'increased cup-to-disc ratio', label: 'Increased cup-to-disc ratio', source: 'brset_icdr.json' },
  { id: 'choroidal-nevus', promptText: 'choroidal nevus', label: 'Choroidal nevus', source: 'brset_nevus.json' },
  { id: 'macular-edema', promptText: 'macular edema', label: 'Macular edema', source: 'brset_macular_edema.json' },
  { id: 'myopic-fundus-changes', promptText: 'myopic fundus changes', label: 'Myopic fundus changes', source: 'brset_myopic.json' },
  { id: 'retinal-drusen', promptText: 'retinal drusen', label: 'Retinal drusen', source: 'brset_drusens.json' },
  { id: 'retinal-hemorrhage', promptText: 'retinal hemorrhage', label: 'Retinal hemorrhage', source: 'brset_hemorrhage.json' },
  { id: 'retinal-scarring', promptText: 'retinal scarring', label: 'Retinal scarring', source: 'brset_scar.json' },
  { id: 'retinal-vascular-occlusion', promptText: 'retinal vascular occlusion', label: 'Retinal vascular occlusion', source: 'brset_occlusion.json' },
  { id: 'glaucoma', promptText: 'glaucoma', label: 'Glaucoma', source: 'fives_glaucoma.json' },
];

export type TaskKind = 'screening' | 'dr-stage' | 'mh-stage' | 'describe' | 'assess-plan';
export type AnswerKind = 'boolean' | 'digit' | 'free-text';

export interface TaskDefinition {
  id: string;
  version: string;
  kind: TaskKind;
  answer: AnswerKind;
  /** Digits the answer may take (digit tasks). */
  allowedDigits?: readonly number[];
  /** Answer tokens over which candidate probabilities are normalised. */
  candidateTokens?: readonly string[];
  /** Which images it runs on. */
  modality: 'OP' | 'OPT' | 'any' | 'case';
  source: string;
}

export const SCREENING_TASK: TaskDefinition = {
  id: 'screening', version: '1.0.0', kind: 'screening', answer: 'boolean',
  candidateTokens: ['TRUE', 'FALSE'], modality: 'OP', source: 'volmo data/datajsons/bool/*.json',
};

export const DR_STAGE_TASK: TaskDefinition = {
  id: 'dr-stage', version: '1.0.0', kind: 'dr-stage', answer: 'digit', allowedDigits: [0, 1, 2, 3, 4],
  candidateTokens: ['0', '1', '2', '3', '4'], modality: 'OP', source: 'volmo data/datajsons/stage/{sustech,sydney_innovation}.json',
};

/** VOLMO's macular-hole labels are 2, 3 and 4 only (mhstage.json, 300 each); anything else is out of vocabulary. */
export const MH_STAGE_TASK: TaskDefinition = {
  id: 'mh-stage', version: '1.0.0', kind: 'mh-stage', answer: 'digit', allowedDigits: [2, 3, 4],
  candidateTokens: ['2', '3', '4'], modality: 'OPT', source: 'volmo data/datajsons/stage/mhstage.json',
};

export const DESCRIBE_TASK: TaskDefinition = {
  id: 'describe', version: '1.0.0', kind: 'describe', answer: 'free-text', modality: 'any',
  source: 'volmo data/datajsons/imgdesc/pmcserina.json',
};

export const ASSESS_PLAN_TASK: TaskDefinition = {
  id: 'assess-plan', version: '1.0.0', kind: 'assess-plan', answer: 'free-text', modality: 'case',
  source: 'volmo data/datajsons/assessplan/pmccasereports.json',
};

/** Bool prompt template (verbatim, incl. the leading "<image>\n"). */
export function screeningPrompt(condition: ConditionDefinition): string {
  return `<image>\nThis is a colorful fundus image. Please tell me whether this image shows ${condition.promptText}. Answer in format: TRUE or FALSE.`;
}

/** DR grading prompt (verbatim, including VOLMO's "ModeRate" spelling, which the model was trained on). */
export const DR_STAGE_PROMPT =
  '<image>\nHere is a high-resolution retina image which might have been taken under a variety of imaging conditions. ' +
  'Rate the presence of diabetic retinopathy in each image on a scale of 0 to 4, according to the following scale:\n\n' +
  '0 - No DR\n1 - Mild\n2 - ModeRate\n3 - Severe\n4 - Proliferative DR\n\n' +
  'Your response should only contain a single number, representing your rating.';

/** Macular-hole OCT prompt (verbatim, with its trailing space). */
export const MH_STAGE_PROMPT =
  '<image>\nThis is an OCT image of ophthalmology. What is the macular hole stage of this image? Please just use a single number. ';

/** Image description prompt (verbatim; VOLMO's chat() prepends "<image>\n", done here explicitly). */
export const DESCRIBE_PROMPT = '<image>\nWhat is shown in this medical image?';
