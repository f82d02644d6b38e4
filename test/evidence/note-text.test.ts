import { describe, expect, it } from 'vitest';
import { decodeEntities, decodeText, htmlToText, noteFormat, noteToText, rtfToText, tidyText } from '../../src/evidence/note-text.js';

const enc = (s: string) => new TextEncoder().encode(s);

describe('note text', () => {
  it('recognises note formats', () => {
    expect(noteFormat('text/plain; charset=utf-8')).toBe('plain');
    expect(noteFormat('TEXT/HTML')).toBe('html');
    expect(noteFormat('application/rtf')).toBe('rtf');
    expect(noteFormat('text/rtf')).toBe('rtf');
    expect(noteFormat('application/pdf')).toBeUndefined();
    expect(noteFormat(undefined)).toBeUndefined();
  });

  it('decodes charsets and strips a BOM', () => {
    expect(decodeText(new Uint8Array([0xef, 0xbb, 0xbf, 0x61]), 'text/plain')).toBe('a');
    expect(decodeText(new Uint8Array([0x66, 0xfc, 0x72]), 'text/plain; charset=ISO-8859-1')).toBe('für');
  });

  it('strips HTML to text, dropping scripts, styles and comments', () => {
    const t = tidyText(htmlToText('<html><head><title>x</title><style>.a{}</style></head><body><h1>Exam</h1><p>VA 20/40 &amp; IOP &lt;21&gt;<br>next&nbsp;line</p><!-- hidden --><script>var s="<p>";</script><table><tr><td>OD</td><td>16</td></tr></table></body></html>'));
    expect(t).toBe('Exam\n\nVA 20/40 & IOP <21>\nnext line\n\nOD 16');
    expect(htmlToText('a<!-- never closed <p>b')).toBe('a ');
    expect(htmlToText('a<SCRIPT>x</script >b')).toBe('a b');
    expect(decodeEntities('&#x41;&#66;&bogus;&#0;')).toBe('AB&bogus;');
  });

  it('strips RTF: groups, destinations, escapes, unicode', () => {
    const rtf = "{\\rtf1\\ansi\\deff0{\\fonttbl{\\f0 Times;}}{\\colortbl;\\red0\\green0\\blue0;}{\\*\\generator Word;}\\f0\\fs24 Pt c/o floaters\\par Fundus: \\'e9tat normal, IOP 16\\tab mmHg \\u8805?21\\par {\\b bold} \\{braces\\}}";
    expect(tidyText(rtfToText(rtf))).toBe('Pt c/o floaters\nFundus: état normal, IOP 16 mmHg ≥21\nbold {braces}');
  });

  it('limits size at a word boundary and marks truncation', () => {
    const long = 'word '.repeat(1000);
    const r = noteToText(enc(long), 'text/plain', 100)!;
    expect(r.truncated).toBe(true);
    expect(r.text.length).toBeLessThanOrEqual(101);
    expect(r.text.endsWith('…')).toBe(true);
    expect(noteToText(enc('short'), 'text/plain', 100)).toEqual({ text: 'short', truncated: false });
  });

  it('refuses non-note types and fake RTF', () => {
    expect(noteToText(enc('%PDF-1.4'), 'application/pdf', 100)).toBeUndefined();
    expect(noteToText(enc('not rtf'), 'text/rtf', 100)).toBeUndefined();
  });

  it('copes with hostile input quickly', () => {
    const t0 = Date.now();
    noteToText(enc('<'.repeat(200_000) + '{\\'.repeat(10_000)), 'text/html', 2000);
    noteToText(enc('{\\rtf1' + '{'.repeat(100_000) + '\\'.repeat(100_000)), 'text/rtf', 2000);
    expect(Date.now() - t0).toBeLessThan(2000);
  });
});
