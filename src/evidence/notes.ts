/** Recent clinical notes: pick text-like DocumentReferences, read their attachments, strip to text. */
import type { Attachment, DocumentReference } from 'fhir/r4.js';
import { isAppError } from '../errors.js';
import { WRITEBACK_SYSTEM } from '../reports/codes.js';
import type { FhirClient } from '../fhir/client.js';
import { noteFormat, noteToText, type NoteFormat } from './note-text.js';
import { conceptDisplay } from './record-extract.js';
import type { ClinicalNote, Problem } from './types.js';

export interface NoteLimits {
  /** How many notes to keep (default 3). */
  readonly maxNotes?: number;
  /** Characters of text per note (default 2000). */
  readonly maxChars?: number;
  /** Bytes downloaded per attachment (default 512 KiB). */
  readonly maxBytes?: number;
}

const PREFERENCE: Record<NoteFormat, number> = { plain: 0, html: 1, rtf: 2 };
const base64Bytes = (b64: string) => Math.floor((b64.replace(/\s+/g, '').length * 3) / 4);

function bestAttachment(doc: DocumentReference): Attachment | undefined {
  return (doc.content ?? [])
    .map((c) => c.attachment)
    .filter((a): a is Attachment => a !== undefined && noteFormat(a.contentType) !== undefined)
    .sort((a, b) => PREFERENCE[noteFormat(a.contentType)!] - PREFERENCE[noteFormat(b.contentType)!])[0];
}

/**
 * A note VOLMO itself wrote back (its draft or the note filed from its review). Never evidence for the next
 * analysis: its text is the model's own output, and each new note would give the patient's evidence a new
 * identity, so the next hook would start another analysis, whose draft would start another (seen with the
 * Epic profile, which writes a draft note when an analysis finishes).
 */
const writtenByVolmo = (d: DocumentReference) => (d.identifier ?? []).some((i) => i.system === WRITEBACK_SYSTEM);

/** Current, text-bearing notes, newest first; notes of the given encounter come first; none of VOLMO's own. */
export function selectNotes(docs: readonly DocumentReference[], encounterId?: string): { doc: DocumentReference; att: Attachment }[] {
  const time = (d: DocumentReference) => Date.parse(d.date ?? d.context?.period?.end ?? d.context?.period?.start ?? '') || 0;
  const inEncounter = (d: DocumentReference) => encounterId !== undefined && (d.context?.encounter ?? []).some((e) => e.reference?.endsWith(`Encounter/${encounterId}`));
  return docs
    .filter((d) => d.status !== 'entered-in-error' && d.status !== 'superseded' && d.docStatus !== 'entered-in-error' && !writtenByVolmo(d))
    .map((doc) => ({ doc, att: bestAttachment(doc) }))
    .filter((x): x is { doc: DocumentReference; att: Attachment } => x.att !== undefined)
    .sort((a, b) => Number(inEncounter(b.doc)) - Number(inEncounter(a.doc)) || time(b.doc) - time(a.doc));
}

export async function readNotes(
  docs: readonly DocumentReference[],
  fhir: FhirClient | undefined,
  opts: NoteLimits & { encounterId?: string; signal?: AbortSignal } = {},
): Promise<{ notes: ClinicalNote[]; problems: Problem[] }> {
  const maxBytes = opts.maxBytes ?? 512 * 1024;
  const maxChars = opts.maxChars ?? 2000;
  const chosen = selectNotes(docs, opts.encounterId).slice(0, opts.maxNotes ?? 3);
  const problems: Problem[] = [];
  const results = await Promise.all(
    chosen.map(async ({ doc, att }): Promise<ClinicalNote | undefined> => {
      const contentType = att.contentType ?? 'text/plain';
      let data: Uint8Array;
      try {
        if (att.data !== undefined) {
          if (base64Bytes(att.data) > maxBytes) throw Object.assign(new Error('too large'), { code: 'payload_too_large' });
          data = new Uint8Array(Buffer.from(att.data, 'base64'));
        } else if (fhir) data = (await fhir.readAttachment(att, { maxBytes, signal: opts.signal })).data;
        else throw Object.assign(new Error('no FHIR access'), { code: 'not_found' });
      } catch (err) {
        const code = isAppError(err) ? err.code : (err as { code?: string }).code;
        problems.push({ kind: 'note_unreadable', severity: 'info', source: 'DocumentReference', message: `a clinical note could not be read (${code ?? 'error'})` });
        return undefined;
      }
      const text = noteToText(data, contentType, maxChars);
      if (!text || text.text === '') {
        problems.push({ kind: 'note_unreadable', severity: 'info', source: 'DocumentReference', message: `a ${contentType.split(';')[0]} note had no readable text` });
        return undefined;
      }
      if (text.truncated) problems.push({ kind: 'note_truncated', severity: 'info', source: 'DocumentReference', message: `a clinical note was cut to ${maxChars} characters` });
      return {
        ref: `DocumentReference/${doc.id ?? 'unknown'}`,
        date: doc.date ?? doc.context?.period?.start,
        type: conceptDisplay(doc.type),
        contentType: contentType.split(';')[0].trim(),
        text: text.text,
        truncated: text.truncated,
      };
    }),
  );
  return { notes: results.filter((n): n is ClinicalNote => n !== undefined), problems };
}
