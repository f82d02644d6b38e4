/**
 * The management-plan rule table: ONE place for what each finding leads to (referral: to whom, how soon;
 * follow-up: what, when). Data only; when a rule applies is decided in derive.ts, keyed by rule id, and
 * documented per rule in docs/clinical-logic.md §12 with the same sources. A site may override the actions,
 * intervals, thresholds and wording of any rule with VOLMO_PLAN_RULES_FILE (rules-file.ts); it cannot add
 * triggers. Bump PLAN_RULES_VERSION whenever a default changes.
 */

export const PLAN_RULES_VERSION = 'volmo-plan-rules/1.0.0';

export type Specialty = 'ophthalmology' | 'retina' | 'glaucoma' | 'eye-care' | 'primary-care';
export type ReferralPriority = 'routine' | 'urgent' | 'asap';
export type FollowUpAction = 're-screen' | 're-examine' | 'repeat-imaging' | 'clinician-review' | 'bp-review' | 'glycaemic-review';

export interface Referral {
  to: Specialty;
  /** Seen within this many days (the upper bound of the published interval). */
  withinDays: number;
  priority: ReferralPriority;
  /** What the referral should include (e.g. IOP, visual fields). */
  tests?: readonly string[];
}

export interface FollowUp {
  action: FollowUpAction;
  /** Earliest and latest day of the interval ("in 6–12 months": 180..365); fromDays absent = "within". */
  fromDays?: number;
  withinDays: number;
}

export interface PlanRule {
  id: string;
  /** What the rule is about, shown with every line it produces. */
  text: string;
  /** Key into PLAN_SOURCES. */
  source: string;
  referral?: Referral;
  followUp?: FollowUp;
  /** Numeric parameters of the trigger (units in the key name). */
  thresholds?: Readonly<Record<string, number>>;
}

export const PLAN_SOURCES: Readonly<Record<string, string>> = {
  ico2017:
    'ICO Guidelines for Diabetic Eye Care, updated 2017 (International Council of Ophthalmology), screening/re-examination ' +
    'and referral table, high-resource setting; summarised in Wong TY et al., Ophthalmology 2018;125(10):1608-22',
  'ico2017-ungradable': 'ICO Guidelines for Diabetic Eye Care, updated 2017: an ungradable screening image needs repeat imaging or examination by an eye-care professional',
  cms142: 'CMS142 "Diabetic Retinopathy: Communication with the Physician Managing Ongoing Diabetes Care" (eCQM); ADA Standards of Care 2024 §6 (HbA1c goal < 7% for many adults)',
  'aao-amd': 'AAO Preferred Practice Pattern: Age-Related Macular Degeneration (Flaxel CJ et al., Ophthalmology 2020;127:P1-P65)',
  'nice-ng82': 'NICE NG82 Age-related macular degeneration (2018): refer suspected late wet active AMD urgently to a macular service',
  'aao-poag-suspect': 'AAO Preferred Practice Pattern: Primary Open-Angle Glaucoma Suspect (Gedde SJ et al., Ophthalmology 2021;128:P151-P192): IOP, gonioscopy, optic nerve and RNFL imaging, visual fields',
  'nice-ng81': 'NICE NG81 Glaucoma: diagnosis and management (2017, updated 2022): refer people with IOP of 24 mmHg or more',
  'aao-rvo': 'AAO Preferred Practice Pattern: Retinal Vein Occlusions and Retinal and Ophthalmic Artery Occlusions (Flaxel CJ et al., Ophthalmology 2020;127:P288-P320)',
  'acc-aha-2017': '2017 ACC/AHA High Blood Pressure Guideline (Whelton PK et al., Hypertension 2018;71:e13-e115): severe elevation > 180/120 mmHg',
  'aao-mh': 'AAO Preferred Practice Pattern: Idiopathic Macular Hole (Flaxel CJ et al., Ophthalmology 2020;127:P184-P222)',
  'nevus-shields2019': 'Shields CL et al., Choroidal nevus imaging features in 3,806 cases and risk factors for transformation into melanoma, JAMA Ophthalmol 2019;137(2):138-47',
  'meta-pm': 'Ohno-Matsui K et al., International photographic classification and grading system for myopic maculopathy (META-PM), Am J Ophthalmol 2015;159:877-83',
  project: 'volmo-cds rule (no published interval; a conservative default for a screening draft, see docs/clinical-logic.md §12)',
};

const ophthalmology = (withinDays: number, priority: ReferralPriority = 'routine', tests?: string[]): Referral => ({ to: 'ophthalmology', withinDays, priority, ...(tests ? { tests } : {}) });
const retina = (withinDays: number, priority: ReferralPriority, tests?: string[]): Referral => ({ to: 'retina', withinDays, priority, ...(tests ? { tests } : {}) });
const reExamine = (fromDays: number | undefined, withinDays: number, action: FollowUpAction = 're-examine'): FollowUp => ({ action, ...(fromDays ? { fromDays } : {}), withinDays });

/**
 * ICO 2017 (high-resource): no DR 1–2 y, mild NPDR 6–12 mo, moderate 3–6 mo + referral, severe < 3 mo +
 * referral, PDR < 1 mo + referral; centre-involving DME 1 mo + referral (non-centre-involving 3 mo). VOLMO's
 * macular-edema answer cannot tell centre involvement, so every "-me" rule takes the centre-involving row.
 */
const DR_RULES: PlanRule[] = [
  { id: 'dr-icdr0', text: 'no apparent diabetic retinopathy, no macular edema', source: 'ico2017', followUp: reExamine(365, 730, 're-screen') },
  { id: 'dr-icdr1', text: 'mild non-proliferative DR, no macular edema', source: 'ico2017', followUp: reExamine(180, 365) },
  { id: 'dr-icdr2', text: 'moderate non-proliferative DR, no macular edema', source: 'ico2017', referral: retina(90, 'routine'), followUp: reExamine(90, 180) },
  { id: 'dr-icdr3', text: 'severe non-proliferative DR, no macular edema', source: 'ico2017', referral: retina(90, 'urgent'), followUp: reExamine(undefined, 90) },
  { id: 'dr-icdr4', text: 'proliferative DR', source: 'ico2017', referral: retina(30, 'urgent'), followUp: reExamine(undefined, 30) },
  ...[0, 1, 2, 3].map((g): PlanRule => ({
    id: `dr-icdr${g}-me`, text: `${['no apparent', 'mild non-proliferative', 'moderate non-proliferative', 'severe non-proliferative'][g]} DR with macular edema (centre involvement unknown: treated as centre-involving)`,
    source: 'ico2017', referral: retina(30, 'urgent', ['OCT of the macula']), followUp: reExamine(undefined, 30),
  })),
  { id: 'dr-icdr4-me', text: 'proliferative DR with macular edema', source: 'ico2017', referral: retina(30, 'urgent', ['OCT of the macula']), followUp: reExamine(undefined, 30) },
  { id: 'macular-edema', text: 'macular edema without a DR grade (centre involvement unknown: treated as centre-involving)', source: 'ico2017', referral: retina(30, 'urgent', ['OCT of the macula']), followUp: reExamine(undefined, 30) },
  { id: 'dr-unstaged', text: 'diabetic retinopathy on screening without a usable ICDR grade (treated as referable)', source: 'ico2017', referral: ophthalmology(90), followUp: reExamine(90, 180) },
  { id: 'dr-referable-uncertain', text: 'ICDR grade below 2 but the referable-DR probability is not low (treated as moderate NPDR until a clinician grades the images)', source: 'ico2017', referral: retina(90, 'routine'), followUp: reExamine(90, 180) },
];

const OTHER_RULES: PlanRule[] = [
  { id: 'ungradable', text: 'fundus image(s) ungradable', source: 'ico2017-ungradable', followUp: reExamine(undefined, 30, 'repeat-imaging') },
  { id: 'indeterminate', text: 'screening answer indeterminate or unparseable', source: 'project', followUp: reExamine(undefined, 14, 'clinician-review') },
  { id: 'no-referable-finding', text: 'every assessed finding negative (DR not staged)', source: 'project', followUp: reExamine(365, 730, 're-screen') },
  { id: 'amd', text: 'signs of age-related macular degeneration', source: 'aao-amd', referral: retina(90, 'routine', ['OCT of the macula']), followUp: reExamine(180, 365) },
  { id: 'amd-reduced-vision', text: 'signs of AMD with reduced visual acuity (possible neovascular AMD)', source: 'nice-ng82', referral: retina(14, 'urgent', ['OCT of the macula']), thresholds: { logMarAtLeast: 0.3 } },
  { id: 'retinal-drusen', text: 'retinal drusen', source: 'aao-amd', followUp: reExamine(180, 365) },
  { id: 'glaucoma-suspect', text: 'glaucoma suspect (increased cup-to-disc ratio or glaucoma on screening)', source: 'aao-poag-suspect', referral: { to: 'glaucoma', withinDays: 90, priority: 'routine', tests: ['IOP', 'gonioscopy', 'visual fields', 'OCT of the nerve fibre layer'] } },
  { id: 'glaucoma-suspect-high-iop', text: 'glaucoma suspect with raised intraocular pressure', source: 'nice-ng81', referral: { to: 'glaucoma', withinDays: 30, priority: 'urgent', tests: ['IOP', 'gonioscopy', 'visual fields', 'OCT of the nerve fibre layer'] }, thresholds: { iopMmHgAtLeast: 24 } },
  { id: 'retinal-vascular-occlusion', text: 'retinal vascular occlusion (vein or artery not distinguished); review blood pressure, glucose and cardiovascular risk with the primary clinician', source: 'aao-rvo', referral: ophthalmology(7, 'urgent', ['OCT of the macula']) },
  { id: 'hypertensive-retinopathy', text: 'hypertensive retinopathy', source: 'acc-aha-2017', followUp: reExamine(undefined, 30, 'bp-review') },
  { id: 'hypertensive-retinopathy-severe-bp', text: 'hypertensive retinopathy with severely raised blood pressure: same-day medical assessment', source: 'acc-aha-2017', referral: { to: 'primary-care', withinDays: 1, priority: 'asap' }, thresholds: { systolicMmHgAbove: 180, diastolicMmHgAbove: 120 } },
  { id: 'retinal-hemorrhage', text: 'retinal haemorrhage without diabetic retinopathy grade; review blood pressure and HbA1c', source: 'aao-rvo', referral: ophthalmology(30) },
  { id: 'macular-hole', text: 'macular hole stage assigned on OCT (surgical evaluation)', source: 'aao-mh', referral: retina(30, 'routine', ['OCT of the macula']) },
  { id: 'choroidal-nevus', text: 'choroidal nevus (risk features not assessable by the model): baseline examination with imaging, then monitoring', source: 'nevus-shields2019', referral: { to: 'eye-care', withinDays: 90, priority: 'routine' }, followUp: reExamine(180, 365) },
  { id: 'myopic-fundus-changes', text: 'myopic fundus changes (myopic maculopathy to be graded)', source: 'meta-pm', referral: ophthalmology(90), followUp: reExamine(365, 365) },
  { id: 'retinal-scarring', text: 'retinal scarring of unknown cause', source: 'project', referral: ophthalmology(90) },
  { id: 'glycaemic-review', text: 'diabetic eye findings with HbA1c above goal: send the findings to the clinician managing diabetes', source: 'cms142', followUp: reExamine(undefined, 90, 'glycaemic-review'), thresholds: { hba1cPercentAtLeast: 7 } },
];

export const DEFAULT_PLAN_RULES: readonly PlanRule[] = Object.freeze([...DR_RULES, ...OTHER_RULES]);

/** A resolved table: rules by id, and where it came from (defaults or a site file with its sha256). */
export interface PlanRuleTable {
  version: string;
  rules: Readonly<Record<string, PlanRule>>;
}

export function defaultPlanRuleTable(): PlanRuleTable {
  return { version: PLAN_RULES_VERSION, rules: Object.fromEntries(DEFAULT_PLAN_RULES.map((r) => [r.id, r])) };
}
