/**
 * A small RFC 4180 CSV reader, pure: comma-separated, fields optionally in double quotes (a quote inside
 * is doubled), CRLF or LF line ends, a UTF-8 byte-order mark ignored. Rows keep their 1-based line number
 * so that errors can point at the line. Blank lines are skipped.
 */
import { AppError } from '../errors.js';

export interface CsvRow {
  line: number;
  fields: string[];
}

export function parseCsv(text: string, name: string): CsvRow[] {
  const s = text.replace(/^\uFEFF/, '');
  const rows: CsvRow[] = [];
  let fields: string[] = [];
  let field = '';
  let quoted = false;
  let line = 1;
  let rowLine = 1;
  const endRow = () => {
    fields.push(field);
    if (fields.length > 1 || fields[0] !== '') rows.push({ line: rowLine, fields });
    fields = [];
    field = '';
  };
  for (let i = 0; i < s.length; i++) {
    const ch = s[i]!;
    if (quoted) {
      if (ch === '"' && s[i + 1] === '"') {
        field += '"';
        i++;
      } else if (ch === '"') quoted = false;
      else {
        if (ch === '\n') line++;
        field += ch;
      }
    } else if (ch === '"' && field === '') quoted = true;
    else if (ch === ',') {
      fields.push(field);
      field = '';
    } else if (ch === '\n' || ch === '\r') {
      if (ch === '\r' && s[i + 1] === '\n') i++;
      endRow();
      line++;
      rowLine = line;
    } else field += ch;
  }
  if (quoted) throw new AppError('bad_request', `${name}: line ${rowLine}: a quoted field is not closed`);
  if (field !== '' || fields.length > 0) endRow();
  return rows;
}

/** Header cells trimmed; trailing empty header cells (spreadsheet exports) dropped. */
export function headerOf(row: CsvRow): string[] {
  const h = row.fields.map((f) => f.trim());
  while (h.length > 0 && h[h.length - 1] === '') h.pop();
  return h;
}
