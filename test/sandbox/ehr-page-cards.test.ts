/** The sandbox EHR page's reading of cards (card-view.ts): markdown subset to text blocks, links and URLs kept only when safe. */
import { describe, expect, it } from 'vitest';
import { cardView, cardViews, inlines, markdownBlocks } from '../../src/sandbox/ehr-page/card-view.js';

describe('markdownBlocks', () => {
  it('reads paragraphs, quotes, lists and bold; blank lines end a block', () => {
    const md = '> **TEST MODEL.** Random weights.\n\n**Right eye**\n- DR: ICDR 2\n- 3 negative\n\nline one\nline two';
    expect(markdownBlocks(md)).toEqual([
      { kind: 'quote', inlines: [{ text: 'TEST MODEL.', strong: true }, { text: ' Random weights.' }] },
      { kind: 'p', inlines: [{ text: 'Right eye', strong: true }] },
      { kind: 'list', items: [[{ text: 'DR: ICDR 2' }], [{ text: '3 negative' }]] },
      { kind: 'p', inlines: [{ text: 'line one' }, { text: ' ' }, { text: 'line two' }] },
    ]);
  });

  it('keeps HTML and unmatched markers as text', () => {
    expect(markdownBlocks('<script>alert(1)</script> **open')).toEqual([{ kind: 'p', inlines: [{ text: '<script>alert(1)</script> **open' }] }]);
    expect(inlines('a ****b')).toEqual([{ text: 'a ' }, { text: 'b' }]);
  });
});

describe('cardView', () => {
  const card = {
    summary: 'TEST MODEL WITH RANDOM WEIGHTS — NOT CLINICAL OUTPUT: AI draft',
    indicator: 'warning',
    detail: '**x**',
    source: { label: 'volmo-cds (test model)', url: 'http://127.0.0.1:8080/model-card' },
    suggestions: [{ label: 'Refer to ophthalmology' }, { nolabel: true }],
    links: [
      { label: 'Review', url: 'http://127.0.0.1:8080/launch', type: 'smart', appContext: '{"analysis":"a1"}' },
      { label: 'Evil', url: 'javascript:alert(1)', type: 'absolute' },
      { label: 'Odd', url: 'http://x.example/', type: 'other' },
    ],
  };

  it('keeps the summary, indicator, source, suggestions and http(s) links only', () => {
    expect(cardView(card)).toEqual({
      indicator: 'warning',
      summary: card.summary,
      source: { label: 'volmo-cds (test model)', url: 'http://127.0.0.1:8080/model-card' },
      detail: [{ kind: 'p', inlines: [{ text: 'x', strong: true }] }],
      suggestions: ['Refer to ophthalmology'],
      links: [{ label: 'Review', url: 'http://127.0.0.1:8080/launch', type: 'smart', appContext: '{"analysis":"a1"}' }],
      pending: false,
    });
  });

  it('marks the in-progress card pending, defaults an unknown indicator to info, and drops what is not a card', () => {
    expect(cardView({ summary: 'AI review of 2 retinal images in progress: results will show on the next chart action', indicator: 'hard-stop' })).toMatchObject({ pending: true, indicator: 'info', detail: [] });
    expect(cardView({ source: { label: 'x' } })).toBeUndefined();
    expect(cardView('card')).toBeUndefined();
    expect(cardViews({ cards: [{ summary: 'a', indicator: 'info' }, null, 3] })).toHaveLength(1);
    expect(cardViews(null)).toEqual([]);
    expect(cardView({ summary: 'a', source: { label: 's', url: 'data:text/html,x' } })?.source).toEqual({ label: 's' });
  });
});
