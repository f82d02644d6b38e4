/**
 * Pure conversion of clinical note attachments (text/plain, text/html, RTF) to plain text, with charset
 * handling and a size limit. No HTML/RTF parser dependency: notes only need their words, not layout.
 */

export type NoteFormat = 'plain' | 'html' | 'rtf';

/** Which format a MIME type is, or undefined when we do not read it as a note. */
export function noteFormat(contentType: string | undefined): NoteFormat | undefined {
  const t = (contentType ?? '').split(';')[0].trim().toLowerCase();
  if (t === 'text/plain') return 'plain';
  if (t === 'text/html' || t === 'application/xhtml+xml') return 'html';
  if (t === 'text/rtf' || t === 'application/rtf') return 'rtf';
  return undefined;
}

/** Decodes bytes using the charset in the content type (UTF-8 default, Latin-1/Windows-1252 supported). */
export function decodeText(data: Uint8Array, contentType: string | undefined): string {
  const cs = /charset\s*=\s*"?([\w-]+)/i.exec(contentType ?? '')?.[1]?.toLowerCase();
  const label = cs === 'iso-8859-1' || cs === 'latin1' || cs === 'windows-1252' || cs === 'cp1252' ? 'windows-1252' : cs === 'utf-16' || cs === 'utf-16le' ? 'utf-16le' : 'utf-8';
  let text = new TextDecoder(label).decode(data);
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  return text;
}

const NAMED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: ' ', deg: '°', plusmn: '±', micro: 'µ', middot: '·', ndash: '–', mdash: '—', hellip: '…' };

function codePoint(n: number): string {
  return n > 0 && n < 0x110000 && !(n >= 0xd800 && n < 0xe000) ? String.fromCodePoint(n) : '';
}

export function decodeEntities(s: string): string {
  return s.replace(/&(#x[0-9a-f]{1,6}|#\d{1,7}|[a-z]{2,8});/gi, (m, e: string) => {
    if (e[0] === '#') return codePoint(e[1] === 'x' || e[1] === 'X' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    return NAMED[e.toLowerCase()] ?? m;
  });
}

const BLOCK_OPEN = /<(script|style|head|title|template|noscript)\b|<!--/gi;

/** Removes comments and non-content elements in one linear pass (an unclosed one swallows the rest, as in a browser). */
function dropBlocks(html: string): string {
  const lower = html.toLowerCase();
  let out = '';
  let pos = 0;
  BLOCK_OPEN.lastIndex = 0;
  for (let m = BLOCK_OPEN.exec(html); m; m = BLOCK_OPEN.exec(html)) {
    if (m.index < pos) continue;
    out += `${html.slice(pos, m.index)} `;
    const close = m[1] === undefined ? '-->' : `</${m[1].toLowerCase()}`;
    const end = lower.indexOf(close, m.index + m[0].length);
    if (end < 0) return out;
    const gt = m[1] === undefined ? end + 2 : lower.indexOf('>', end);
    if (gt < 0) return out;
    pos = gt + 1;
    BLOCK_OPEN.lastIndex = pos;
  }
  return out + html.slice(pos);
}

/** Text of an HTML note. Linear time: tag patterns never span another '<'. */
export function htmlToText(html: string): string {
  return decodeEntities(
    dropBlocks(html)
      .replace(/<br\s*\/?>/gi, '\n')
      .replace(/<\/?(p|div|li|tr|h[1-6]|table|ul|ol|section|article|blockquote|pre)\b[^<>]*>/gi, '\n')
      .replace(/<\/t[dh]\s*>/gi, '\t')
      .replace(/<[^<>]*>/g, ''),
  );
}

/** RTF destinations whose text is not note content. */
const SKIP_DESTINATIONS = new Set(['fonttbl', 'colortbl', 'stylesheet', 'info', 'pict', 'header', 'footer', 'headerl', 'headerr', 'footerl', 'footerr', 'object', 'themedata', 'datastore', 'xmlnstbl', 'listtable', 'listoverridetable', 'rsidtbl', 'generator', 'latentstyles']);

const CP1252 = new TextDecoder('windows-1252');

/** Text of an RTF document: control words dropped, \par/\line/\tab kept as whitespace, \'hh and \uN decoded. */
export function rtfToText(rtf: string): string {
  let out = '';
  let depth = 0;
  let skipDepth = -1; // group depth at which skipping started
  let ucSkip = 1; // characters to skip after \uN
  let pendingSkip = 0;
  let i = 0;
  while (i < rtf.length) {
    const ch = rtf[i];
    if (ch === '{') { depth++; i++; continue; }
    if (ch === '}') { if (depth === skipDepth) skipDepth = -1; depth--; i++; continue; }
    if (ch === '\\') {
      const next = rtf[i + 1];
      if (next === '\\' || next === '{' || next === '}') { if (skipDepth < 0) out += next; i += 2; continue; }
      if (next === "'") {
        const hex = rtf.slice(i + 2, i + 4);
        if (skipDepth < 0 && pendingSkip === 0) out += CP1252.decode(new Uint8Array([parseInt(hex, 16) || 0x3f]));
        else if (pendingSkip > 0) pendingSkip--;
        i += 4;
        continue;
      }
      if (next === '*') { if (skipDepth < 0) skipDepth = depth; i += 2; continue; }
      if (next === '~') { if (skipDepth < 0) out += ' '; i += 2; continue; }
      const m = /^\\([a-zA-Z]{1,32})(-?\d{1,10})? ?/.exec(rtf.slice(i, i + 48));
      if (!m) { i += 2; continue; }
      i += m[0].length;
      const word = m[1];
      const arg = m[2] === undefined ? undefined : Number(m[2]);
      if (SKIP_DESTINATIONS.has(word) && skipDepth < 0) { skipDepth = depth; continue; }
      if (skipDepth >= 0) continue;
      if (word === 'par' || word === 'line' || word === 'sect' || word === 'page' || word === 'row') out += '\n';
      else if (word === 'tab' || word === 'cell') out += '\t';
      else if (word === 'uc' && arg !== undefined) ucSkip = arg;
      else if (word === 'u' && arg !== undefined) { out += codePoint(arg < 0 ? arg + 65536 : arg); pendingSkip = ucSkip; }
      continue;
    }
    if (ch === '\r' || ch === '\n') { i++; continue; }
    if (skipDepth < 0) {
      if (pendingSkip > 0) pendingSkip--;
      else out += ch;
    }
    i++;
  }
  return out;
}

/** Collapses runs of spaces and blank lines. */
export function tidyText(s: string): string {
  return s
    .replace(/\r\n?/g, '\n')
    .replace(/[^\S\n]+/g, ' ')
    .replace(/ *\n */g, '\n')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

/** Plain text of a note attachment, cut to `maxChars` at a word boundary when possible. */
export function noteToText(data: Uint8Array, contentType: string, maxChars: number): { text: string; truncated: boolean } | undefined {
  const format = noteFormat(contentType);
  if (!format) return undefined;
  const raw = format === 'rtf' ? new TextDecoder('windows-1252').decode(data) : decodeText(data, contentType);
  if (format === 'rtf' && !raw.trimStart().startsWith('{\\rtf')) return undefined;
  const text = tidyText(format === 'html' ? htmlToText(raw) : format === 'rtf' ? rtfToText(raw) : raw);
  if (text.length <= maxChars) return { text, truncated: false };
  const cut = text.slice(0, maxChars);
  const space = cut.lastIndexOf(' ');
  return { text: `${space > maxChars * 0.8 ? cut.slice(0, space) : cut}…`, truncated: true };
}
