/**
 * A CDS card as the sandbox EHR page shows it: plain data the page's script turns into DOM nodes with
 * `textContent` only (never HTML from the card). The card's markdown detail is read as the small subset
 * CDS Hooks cards use here — paragraphs, `> ` quotes, `- ` lists, `**bold**` — and everything else is text.
 * Links keep only http(s) URLs. Pure.
 */

export type Inline = { text: string; strong?: true };
export type Block = { kind: 'p' | 'quote'; inlines: Inline[] } | { kind: 'list'; items: Inline[][] };

export interface CardLinkView {
  label: string;
  url: string;
  type: 'smart' | 'absolute';
  appContext?: string;
}

export interface CardView {
  indicator: 'info' | 'warning' | 'critical';
  summary: string;
  source: { label: string; url?: string };
  detail: Block[];
  suggestions: string[];
  links: CardLinkView[];
  /** The service said the analysis is still running: ask again later (as on the next chart action). */
  pending: boolean;
}

const MAX_TEXT = 20_000;

function str(v: unknown, max = 1000): string | undefined {
  return typeof v === 'string' ? v.slice(0, max) : undefined;
}

function httpUrl(v: unknown): string | undefined {
  const s = str(v, 2048);
  if (!s) return undefined;
  try {
    const u = new URL(s);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u.href : undefined;
  } catch {
    return undefined;
  }
}

/** `**bold**` spans; an unmatched `**` stays as text. */
export function inlines(line: string): Inline[] {
  const out: Inline[] = [];
  let rest = line;
  for (;;) {
    const open = rest.indexOf('**');
    const close = open < 0 ? -1 : rest.indexOf('**', open + 2);
    if (open < 0 || close < 0) break;
    if (open > 0) out.push({ text: rest.slice(0, open) });
    if (close > open + 2) out.push({ text: rest.slice(open + 2, close), strong: true });
    rest = rest.slice(close + 2);
  }
  if (rest) out.push({ text: rest });
  return out;
}

/** The markdown subset of a card's detail as blocks; blank lines end a block. */
export function markdownBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  let current: Block | undefined;
  const flush = () => {
    if (current) blocks.push(current);
    current = undefined;
  };
  for (const raw of markdown.slice(0, MAX_TEXT).split(/\r?\n/)) {
    const line = raw.trimEnd();
    if (!line.trim()) {
      flush();
      continue;
    }
    const quote = /^>\s?(.*)$/.exec(line);
    const item = /^\s*[-*]\s+(.*)$/.exec(line);
    if (quote) {
      if (current?.kind !== 'quote') flush();
      if (current?.kind === 'quote') current.inlines.push({ text: ' ' }, ...inlines(quote[1]!));
      else current = { kind: 'quote', inlines: inlines(quote[1]!) };
    } else if (item) {
      if (current?.kind !== 'list') flush();
      if (current?.kind === 'list') current.items.push(inlines(item[1]!));
      else current = { kind: 'list', items: [inlines(item[1]!)] };
    } else {
      if (current?.kind !== 'p') flush();
      if (current?.kind === 'p') current.inlines.push({ text: ' ' }, ...inlines(line));
      else current = { kind: 'p', inlines: inlines(line) };
    }
  }
  flush();
  return blocks;
}

const INDICATORS = new Set(['info', 'warning', 'critical']);

/** One card of a CDS Hooks response as the page shows it; undefined when it is not a card (no summary). */
export function cardView(card: unknown): CardView | undefined {
  if (typeof card !== 'object' || card === null) return undefined;
  const c = card as Record<string, unknown>;
  const summary = str(c.summary, 300);
  if (!summary) return undefined;
  const source = (typeof c.source === 'object' && c.source !== null ? c.source : {}) as Record<string, unknown>;
  const sourceUrl = httpUrl(source.url);
  const links: CardLinkView[] = [];
  for (const l of Array.isArray(c.links) ? (c.links as Record<string, unknown>[]) : []) {
    const url = httpUrl(l?.url);
    const label = str(l?.label, 200);
    if (!url || !label || (l.type !== 'smart' && l.type !== 'absolute')) continue;
    const appContext = str(l.appContext, 4096);
    links.push({ label, url, type: l.type, ...(appContext !== undefined ? { appContext } : {}) });
  }
  const suggestions = (Array.isArray(c.suggestions) ? (c.suggestions as Record<string, unknown>[]) : []).map((s) => str(s?.label, 300)).filter((s): s is string => Boolean(s));
  return {
    indicator: INDICATORS.has(c.indicator as string) ? (c.indicator as CardView['indicator']) : 'info',
    summary,
    source: { label: str(source.label, 200) ?? '(no source)', ...(sourceUrl ? { url: sourceUrl } : {}) },
    detail: markdownBlocks(str(c.detail, MAX_TEXT) ?? ''),
    suggestions,
    links,
    pending: /\bin progress\b/.test(summary),
  };
}

/** The cards of a CDS Hooks response body (anything that is not a card is left out). */
export function cardViews(body: unknown): CardView[] {
  const cards = typeof body === 'object' && body !== null ? (body as { cards?: unknown }).cards : undefined;
  return (Array.isArray(cards) ? cards : []).map(cardView).filter((v): v is CardView => v !== undefined);
}
