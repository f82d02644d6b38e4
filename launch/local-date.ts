/**
 * Dates from the record (FHIR `date` / `dateTime` / `instant`) as the review page shows them: a <time>
 * element the page's script (pages.ts) rewrites to the browser's local date, as it does for the draft's
 * date and time. Without the script: the calendar date as the record wrote it. A date with no time
 * (`2024-03-01`) is a calendar date and stays that day in every time zone; a partial date (`2024-03`,
 * `2024`) is shown as written. A value that is none of these is not shown at all (never half-parsed). Pure.
 */
import { escapeHtml } from '../src/reports/note.js';

export interface RecordDate {
  /** The `datetime` attribute: the calendar date, or the instant in UTC (ISO 8601). */
  datetime: string;
  /** The text without scripts: the date as the record wrote it (`YYYY-MM-DD`, `YYYY-MM` or `YYYY`). */
  text: string;
  /** A calendar date without a time (not shifted to any time zone). */
  calendar: boolean;
}

const DATE = /^(\d{4})(?:-(0[1-9]|1[0-2])(?:-(0[1-9]|[12]\d|3[01]))?)?$/;
const DATE_TIME = /^(\d{4})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d(?::[0-5]\d(?:\.\d{1,9})?)?(?:Z|[+-](?:0\d|1[0-4]):[0-5]\d)$/;

export function recordDate(value: string | undefined): RecordDate | undefined {
  if (typeof value !== 'string' || value.length > 40) return undefined;
  const d = DATE.exec(value);
  if (d) {
    if (d[3] && new Date(`${value}T00:00:00Z`).getUTCDate() !== Number(d[3])) return undefined; // 2023-02-30
    return { datetime: value, text: value, calendar: true };
  }
  if (!DATE_TIME.test(value)) return undefined;
  const t = new Date(value);
  if (Number.isNaN(t.getTime())) return undefined;
  return { datetime: t.toISOString(), text: value.slice(0, 10), calendar: false };
}

/** A record's date as `<time data-date>`; '' when the value is not a date. */
export function dateElement(value: string | undefined): string {
  const d = recordDate(value);
  return d ? `<time datetime="${escapeHtml(d.datetime)}" data-date>${escapeHtml(d.text)}</time>` : '';
}

/** The same date as plain text (for alt text and titles, which hold no markup): as the record wrote it. */
export function dateText(value: string | undefined): string | undefined {
  return recordDate(value)?.text;
}

/**
 * The page's one script (allowed by its CSP nonce): each <time> in the browser's local time. A draft's
 * instant gets date and time; a record's date (`data-date`) the date only; a calendar date is read as that
 * day (not as midnight UTC); a partial date is left as written.
 */
export const LOCAL_TIME_SCRIPT = `for(const t of document.querySelectorAll('time[datetime]')){const v=t.getAttribute('datetime');const m=/^(\\d{4})-(\\d{2})-(\\d{2})$/.exec(v);if(!m&&v.indexOf('T')<0)continue;const d=m?new Date(+m[1],+m[2]-1,+m[3]):new Date(v);if(isNaN(d))continue;t.textContent=t.hasAttribute('data-date')?d.toLocaleDateString(undefined,{dateStyle:'medium'}):d.toLocaleString(undefined,{dateStyle:'medium',timeStyle:'short'})}`;
