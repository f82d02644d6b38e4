/** Server-rendered pages of the SMART app: no scripts, no frameworks, every value escaped. */
import { RANDOM_WEIGHTS_BANNER } from '../src/reports/codes.js';
import { escapeHtml } from '../src/reports/note.js';
import type { ImageView } from './app-images.js';
import type { EyeSummaryView, MeasurementView } from './eye-summary.js';
import { dateElement, dateText, LOCAL_TIME_SCRIPT } from './local-date.js';

export const PENDING_REVIEW_NOTICE = 'Draft pending clinician review; signing is not available yet.';
export const REVIEW_NOTICE = 'AI draft pending your review: nothing is in the chart as final until you approve it.';
const TEST_MODEL_NOTICE = RANDOM_WEIGHTS_BANNER;


const STYLE = `body{font-family:system-ui,sans-serif;margin:0;color:#1b1b1b;line-height:1.35}main{padding:.5rem .75rem;max-width:60rem}
h1{font-size:1.15rem;margin:.4rem 0}h2{font-size:1.05rem;margin:.5rem 0 .25rem}h3{font-size:1rem;margin:.5rem 0 .25rem}h4{font-size:.95rem;margin:.25rem 0}
.banner{background:#eef3f8;border-bottom:1px solid #c7d3e0;padding:.4rem .75rem}.banner strong{font-size:1.05rem}
.test-model{background:#b00020;color:#fff;font-weight:700;padding:.3rem .75rem;font-size:.9rem}
.notice{border-left:4px solid #c77700;background:#fff6e5;padding:.3rem .6rem;margin:.4rem 0;font-size:.9rem}
.eye-summary{border:1px solid #c7d3e0;padding:.25rem .6rem;margin:.4rem 0}.eye-summary ul{margin:.1rem 0;padding-left:1.1rem}
.eyes{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:.25rem .75rem}.eye dl{margin:0}.eye dt{font-weight:600;font-size:.85rem;color:#444}.eye dd{margin:0 0 .2rem}
pre{white-space:pre-wrap;background:#f7f7f7;border:1px solid #ddd;padding:.75rem;font-size:.9rem}.muted{color:#555}
.review{border:1px solid #c7d3e0;padding:.5rem .75rem;margin:.75rem 0}.review textarea{width:100%;min-height:5rem;font:inherit}.review button{margin:.5rem .5rem 0 0;padding:.4rem .8rem}
.done{border-left:4px solid #2e7d32;background:#edf7ee;padding:.5rem .75rem}.refused{border-left:4px solid #b00020;background:#fdecee;padding:.5rem .75rem}
.plan{border-left:4px solid #1f5fa8;background:#eef4fb;padding:.25rem .75rem}.model-plan{border-left:4px solid #777;background:#f4f4f4;padding:.25rem .75rem}
.measurements .when{color:#555;font-size:.85rem}
.images{margin:.4rem 0}.image-eyes{display:grid;grid-template-columns:repeat(auto-fit,minmax(12rem,1fr));gap:.25rem .75rem}
.thumbs{list-style:none;margin:0;padding:0;display:flex;flex-wrap:wrap;gap:.4rem}.thumbs li{width:7.5rem;font-size:.8rem}
.thumbs a{display:inline-block;line-height:0;border:2px solid transparent}.thumbs a:focus{outline:3px solid #1f5fa8;outline-offset:1px}
.thumbs img{width:112px;height:84px;object-fit:contain;background:#111}.not-usable{display:block;color:#8a1c00}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
.jump{margin:.2rem 0;font-size:.9rem}.earlier ul{padding-left:1.1rem}.earlier li{margin:.2rem 0}
.viewer img{max-width:100%;height:auto;background:#111}`;

function layout(title: string, body: string): string {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><meta name="referrer" content="no-referrer"><title>${escapeHtml(title)}</title><style>${STYLE}</style></head><body>${body}<script>${LOCAL_TIME_SCRIPT}</script></body></html>`;
}

/** An ISO date-time as a <time> element: readable UTC without scripts, local time with them. */
export function timeElement(iso: string): string {
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return escapeHtml(iso);
  const utc = `${d.toISOString().slice(0, 10)} ${d.toISOString().slice(11, 16)} UTC`;
  return `<time datetime="${escapeHtml(d.toISOString())}">${utc}</time>`;
}

function summaryBlock(id: string, s: EyeSummaryView): string {
  const eyes = s.eyes
    .map(
      (e) => `<section class="eye"><h4>${escapeHtml(e.eye)}</h4><dl><dt>Diabetic retinopathy stage</dt><dd>${escapeHtml(e.drStage)}</dd>${
        e.referableDr ? `<dt>Referable diabetic retinopathy</dt><dd>${escapeHtml(e.referableDr)}</dd>` : ''
      }<dt>Positive findings</dt><dd>${e.positive.length ? `<ul>${e.positive.map((p) => `<li>${escapeHtml(p)}</li>`).join('')}</ul>` : e.ungradable ? 'None assessed: no usable image' : 'None'}</dd></dl></section>`,
    )
    .join('');
  return `<section class="eye-summary" aria-labelledby="summary-${escapeHtml(id)}"><h3 id="summary-${escapeHtml(id)}">Summary by eye</h3><p><strong>Referral:</strong> ${escapeHtml(s.referral)}</p><div class="eyes">${eyes}</div><h4>Measurements on record</h4><ul class="measurements">${s.measurements.map(measurementItem).join('')}</ul></section>`;
}

/** "HbA1c: 8.4% (<time>)": each value with the date it was measured, shown as a local date. */
function measurementItem(m: MeasurementView): string {
  const values = m.values.map((v) => {
    const when = dateElement(v.date);
    return `${escapeHtml(v.text)}${when ? ` <span class="when">(${when})</span>` : ''}`;
  });
  return `<li>${escapeHtml(m.label)}: ${values.join(', ')}</li>`;
}

/** The app's links to one image of a draft: the picture (`thumb` / `large`) and its larger view page. */
export function imageHref(sessionId: string, analysisId: string, n: number, what: 'thumb' | 'large' | 'view'): string {
  const base = `/app/image/${encodeURIComponent(analysisId)}/${n}`;
  const session = `session=${encodeURIComponent(sessionId)}`;
  return what === 'view' ? `${base}/view?${session}` : `${base}?${session}&size=${what}`;
}

/** Alt text of an image: its eye, kind and date, nothing else. */
export function imageAlt(i: Pick<ImageView, 'eye' | 'kind' | 'date'>): string {
  const date = dateText(i.date);
  return `${i.eye} ${i.kind}${date ? `, ${date}` : ', date not recorded'}`;
}

/** The images the draft used, per eye, below the summary: each thumbnail a link to its larger view. */
function imagesBlock(id: string, v: NonNullable<DraftView['images']>): string {
  const eyes = ['Right eye', 'Left eye', 'Eye not recorded'] as const;
  const groups = eyes
    .map((eye) => ({ eye, items: v.items.filter((i) => i.eye === eye) }))
    .filter((g) => g.items.length)
    .map(({ eye, items }) => {
      const li = items
        .map((i) => {
          const alt = imageAlt(i);
          const when = dateElement(i.date);
          return `<li><a href="${escapeHtml(imageHref(v.sessionId, id, i.n, 'view'))}"><img src="${escapeHtml(imageHref(v.sessionId, id, i.n, 'thumb'))}" alt="${escapeHtml(alt)}" width="112" height="84" loading="lazy" decoding="async"><span class="sr"> (open larger)</span></a><span class="caption">${when || 'Date not recorded'}</span>${
            i.notUsable ? `<span class="not-usable">Not usable: ${escapeHtml(i.notUsable)}</span>` : ''
          }</li>`;
        })
        .join('');
      return `<section class="image-eye"><h4>${escapeHtml(eye)}</h4><ul class="thumbs">${li}</ul></section>`;
    })
    .join('');
  return `<section class="images" aria-labelledby="images-${escapeHtml(id)}"><h3 id="images-${escapeHtml(id)}">Images used</h3><div class="image-eyes">${groups}</div></section>`;
}

export function errorPage(title: string, message: string): string {
  return layout(title, `<main><h1>${escapeHtml(title)}</h1><p>${escapeHtml(message)}</p><p class="muted">Open the app again from the patient's chart in the EHR.</p></main>`);
}

export interface PatientView {
  name: string;
  gender?: string;
  birthDate?: string;
  mrn?: string;
}

export interface DraftSection {
  title: string;
  lines: string[];
}

export interface DraftView {
  id: string;
  noteText: string;
  /**
   * Shown above the full note, in this order: the per-eye summary, then the rule-derived plan, then VOLMO's
   * own assessment and plan (model-generated, unverified) when the second stage has produced it.
   */
  summary?: DraftSection[];
  plan?: DraftSection;
  modelPlan?: DraftSection;
  /** The structured per-eye summary shown first (from the findings). */
  eyeSummary?: EyeSummaryView;
  random: boolean;
  /** Opened from a card's link (its `appContext`): shown first. */
  fromCard?: boolean;
  model: string;
  generatedAt?: string;
  /** The review form; absent when write-back is off for this EHR. */
  review?: ReviewView;
  /** The images the analysis used (thumbnails below the summary); `sessionId` makes their links. */
  images?: { sessionId: string; items: ImageView[] };
  /** The orders this draft was made for, by name. */
  orders?: string[];
}

/** Another retained draft of the same patient, listed with a link to open it. */
export interface EarlierDraftView {
  id: string;
  /** When the draft was made (ISO instant). */
  date: string;
  /** Draft, not yet reviewed / Approved and filed / Discarded. */
  status: string;
  orders: string[];
  href?: string;
  random?: boolean;
}

export interface ReviewView {
  state: 'open' | 'filed' | 'discarded';
  /** "What will be written, and where" for Approve & file, and for Discard. */
  approvePlan: string;
  discardPlan: string;
  /** The draft's conclusion, the starting text of the editable field. */
  conclusion: string;
  /** The draft's assessment and plan (the rule-derived plan, one line each), the starting text of its editable field. */
  assessmentPlan: string;
  sessionId: string;
  csrf: string;
}

export interface AppPageInput {
  /** From the launch context; `false`: the EHR shows its own banner, so only a compact line is shown. */
  needPatientBanner: boolean;
  patient?: PatientView;
  /** Set when the patient could not be read (message without PHI). */
  patientProblem?: string;
  /** Said instead of the usual "no analysis yet" when no draft is shown (e.g. the patient could not be confirmed). */
  emptyMessage?: string;
  drafts: DraftView[];
  /** Why the draft a card named is not shown (no PHI). */
  focusNotice?: string;
  /** The patient's other drafts, newest first. */
  earlier?: EarlierDraftView[];
}

function banner(input: AppPageInput): string {
  const p = input.patient;
  if (!p) return `<div class="banner" role="banner">${escapeHtml(input.patientProblem ?? 'Patient details are unavailable.')}</div>`;
  if (!input.needPatientBanner) return `<div class="banner" role="banner">Draft for <strong>${escapeHtml(p.name)}</strong></div>`;
  const facts = [p.gender, p.birthDate && `born ${p.birthDate}`, p.mrn && `MRN ${p.mrn}`].filter((f): f is string => Boolean(f)).map(escapeHtml).join(' · ');
  return `<div class="banner" role="banner"><strong>${escapeHtml(p.name)}</strong>${facts ? ` <span class="muted">${facts}</span>` : ''}</div>`;
}

function block(kind: string, s: DraftSection | undefined): string {
  if (!s) return '';
  return `<div class="${kind}" data-section="${kind}"><h3>${escapeHtml(s.title)}</h3><ul>${s.lines.map((l) => `<li>${escapeHtml(l)}</li>`).join('')}</ul></div>`;
}

function reviewForm(d: DraftView, r: ReviewView): string {
  if (r.state !== 'open') {
    const what = r.state === 'filed' ? 'Approved and filed in the EHR.' : 'Discarded.';
    return `<div class="done" data-review-state="${r.state}"><p>${what} Nothing more will be written for this draft.</p></div>`;
  }
  const id = `conclusion-${escapeHtml(d.id)}`;
  const apId = `assessment-plan-${escapeHtml(d.id)}`;
  return `<form class="review" method="post" action="/app/review" data-review-state="open">
<input type="hidden" name="session" value="${escapeHtml(r.sessionId)}"><input type="hidden" name="csrf" value="${escapeHtml(r.csrf)}"><input type="hidden" name="analysis" value="${escapeHtml(d.id)}">
<h3>Your review</h3><label for="${id}">Conclusion (edit before filing)</label><textarea id="${id}" name="conclusion" maxlength="4000" required>${escapeHtml(r.conclusion)}</textarea>
<label for="${apId}">Assessment and plan (edit before filing)</label><textarea id="${apId}" name="assessmentPlan" maxlength="8000">${escapeHtml(r.assessmentPlan)}</textarea>
<h4>What will be written, and where</h4><p data-plan="approve">${escapeHtml(r.approvePlan)}</p><p data-plan="discard" class="muted">${escapeHtml(r.discardPlan)}</p>
<button type="submit" name="action" value="approve">Approve &amp; file</button><button type="submit" name="action" value="discard" formnovalidate>Discard</button></form>`;
}

export function reviewResultPage(kind: 'done' | 'refused', title: string, message: string, backUrl: string, reason?: string): string {
  const why = reason ? `<p>The EHR said: <q data-ehr-reason>${escapeHtml(reason)}</q></p>` : '';
  return layout(title, `<main><h1>${escapeHtml(title)}</h1><div class="${kind}" role="status"><p>${escapeHtml(message)}</p>${why}</div><p><a href="${escapeHtml(backUrl)}">Back to the draft</a></p></main>`);
}

function draft(d: DraftView): string {
  const when = d.generatedAt ? ` · ${timeElement(d.generatedAt)}` : '';
  const summary = (d.summary ?? []).map((s) => block('summary', s)).join('');
  const top = `${summary}${block('plan', d.plan)}${block('model-plan', d.modelPlan)}`;
  const fromCard = d.fromCard ? ' data-from-card="true"' : '';
  const orders = d.orders?.length ? `<p class="muted" data-orders>For the order${d.orders.length > 1 ? 's' : ''}: ${d.orders.map(escapeHtml).join('; ')}</p>` : '';
  return `<section class="draft" data-draft-id="${escapeHtml(d.id)}"${fromCard}><h2>AI draft${d.fromCard ? ' (opened from the card)' : ''}</h2>${d.eyeSummary ? summaryBlock(d.id, d.eyeSummary) : ''}${d.images ? imagesBlock(d.id, d.images) : ''}<p class="muted">${escapeHtml(d.model)}${when}</p>${orders}${top}${top ? '<h3>Full draft note</h3>' : ''}${d.review ? reviewForm(d, d.review) : ''}<pre>${escapeHtml(d.noteText)}</pre></section>`;
}

export function appPage(input: AppPageInput): string {
  const testModel = input.drafts.some((d) => d.random) ? `<div class="test-model" role="alert">${TEST_MODEL_NOTICE}. Its answers mean nothing clinically.</div>` : '';
  const drafts = input.drafts.length
    ? input.drafts.map(draft).join('')
    : `<p role="status">${escapeHtml(input.emptyMessage ?? 'No AI analysis is available for this patient yet. It appears here once an eye-exam order has been analysed.')}</p>`;
  return layout(
    'VOLMO eye exam draft',
    `${testModel}${banner(input)}<main><h1>VOLMO eye exam draft</h1><p class="notice">${input.drafts.some((d) => d.review) ? REVIEW_NOTICE : PENDING_REVIEW_NOTICE}</p>${input.focusNotice ? `<p class="notice" role="status">${escapeHtml(input.focusNotice)}</p>` : ''}${jumpToEarlier(input.earlier)}${drafts}${earlierBlock(input.earlier)}</main>`,
  );
}

/** One short line at the top when the patient has other drafts: a link down to their list (below the full note). */
function jumpToEarlier(list: readonly EarlierDraftView[] | undefined): string {
  if (!list?.length) return '';
  return `<p class="muted jump"><a href="#earlier-drafts">${list.length === 1 ? '1 other draft' : `${list.length} other drafts`} for this patient</a></p>`;
}

/** The patient's other drafts: date, review status, the order(s) each was made for, and a link to open it. */
function earlierBlock(list: readonly EarlierDraftView[] | undefined): string {
  if (!list?.length) return '';
  const items = list
    .map((e) => {
      const label = `Draft of ${timeElement(e.date)}${e.random ? ' (test model)' : ''}`;
      const orders = e.orders.length ? `<br><span class="muted">Order${e.orders.length > 1 ? 's' : ''}: ${e.orders.map(escapeHtml).join('; ')}</span>` : '<br><span class="muted">Order not recorded</span>';
      return `<li data-draft="${escapeHtml(e.id)}">${e.href ? `<a href="${escapeHtml(e.href)}">${label}</a>` : label} — <span data-status>${escapeHtml(e.status)}</span>${orders}</li>`;
    })
    .join('');
  return `<section class="earlier" aria-labelledby="earlier-drafts"><h2 id="earlier-drafts">Other drafts for this patient</h2><ul>${items}</ul></section>`;
}

/** The larger view of one image: its eye, kind and date, why it was not usable, and the way back. */
export function imageViewPage(v: { image: ImageView; src: string; back: string }): string {
  const i = v.image;
  const alt = imageAlt(i);
  const when = dateElement(i.date);
  const title = `${i.eye} ${i.kind}`;
  return layout(
    title,
    `<main class="viewer"><h1>${escapeHtml(title)}</h1><p>${when ? `Taken ${when}` : 'Date not recorded'}</p>${
      i.notUsable ? `<p class="notice">Not usable for the analysis: ${escapeHtml(i.notUsable)}</p>` : ''
    }<p><a href="${escapeHtml(v.back)}">Back to the draft</a></p><img src="${escapeHtml(v.src)}" alt="${escapeHtml(alt)}"></main>`,
  );
}
