import type { DocumentReference } from 'fhir/r4.js';
import { describe, expect, it } from 'vitest';
import { selectNotes } from '../../src/evidence/notes.js';
import { writebackIdentifier } from '../../src/writeback/identifiers.js';

const note = (id: string, date: string, extra: Partial<DocumentReference> = {}): DocumentReference => ({
  resourceType: 'DocumentReference',
  id,
  status: 'current',
  date,
  content: [{ attachment: { contentType: 'text/plain', data: Buffer.from(`note ${id}`).toString('base64') } }],
  ...extra,
});

describe('which notes are evidence', () => {
  it('never VOLMO\'s own notes (draft or filed): their text is model output, and each would re-key the evidence', () => {
    const docs = [
      note('clinician', '2025-03-01T10:00:00Z'),
      note('volmo-draft', '2025-03-05T10:00:00Z', { docStatus: 'preliminary', identifier: [writebackIdentifier('a1', 'DocumentReference/draft')] }),
      note('volmo-filed', '2025-03-06T10:00:00Z', { docStatus: 'final', identifier: [{ system: 'urn:other', value: 'x' }, writebackIdentifier('a1', 'DocumentReference/approve')] }),
      note('other-system', '2025-03-04T10:00:00Z', { identifier: [{ system: 'urn:epic:note', value: '9' }] }),
      note('withdrawn', '2025-03-07T10:00:00Z', { status: 'entered-in-error' }),
    ];
    expect(selectNotes(docs).map((x) => x.doc.id)).toEqual(['other-system', 'clinician']);
  });
});
