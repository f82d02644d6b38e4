/**
 * The sandbox EHR page's HTML: one static document with one nonce'd `<style>` and one nonce'd `<script>`.
 * The script builds everything that comes from the service (cards, patient names, filed notes) with
 * `textContent` and `createElement` only: nothing from a card is ever parsed as HTML.
 */

const STYLE = `
*{box-sizing:border-box}
body{margin:0;font:15px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1c2733;background:#eef2f6}
header.ehr{background:#24415f;color:#fff;padding:.5rem 1rem;display:flex;gap:1rem;align-items:baseline;flex-wrap:wrap}
header.ehr h1{font-size:1.1rem;margin:0}
header.ehr .who{font-size:.85rem;opacity:.85}
.sandbox-note{background:#fff4d6;border-bottom:1px solid #e0c36a;padding:.35rem 1rem;font-size:.85rem}
.layout{display:flex;align-items:flex-start}
main{flex:1;min-width:0;padding:1rem}
.pick{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
.pick select{font:inherit;padding:.25rem;max-width:100%}
.banner{background:#fff;border:1px solid #c7d3e0;border-radius:4px;padding:.5rem .75rem;margin:.75rem 0}
.banner strong{font-size:1.05rem}
.banner .scenario{font-size:.85rem;color:#52616f;margin-top:.2rem}
.actions{display:flex;gap:.5rem;flex-wrap:wrap;margin:.5rem 0}
button{font:inherit;padding:.35rem .8rem;border:1px solid #5b7594;background:#fff;border-radius:3px;cursor:pointer}
button.primary{background:#24415f;color:#fff;border-color:#24415f}
button:disabled{opacity:.5;cursor:default}
.status{min-height:1.4rem;font-size:.9rem;color:#3a4b5c}
.status.error{color:#a01d1d}
.cards{display:flex;flex-direction:column;gap:.6rem;margin:.5rem 0}
.card{background:#fff;border:1px solid #c7d3e0;border-left:6px solid #2f6db5;border-radius:4px;padding:.6rem .8rem}
.card[data-indicator=warning]{border-left-color:#d98b00}
.card[data-indicator=critical]{border-left-color:#c4161c}
.card .indicator{display:inline-block;font-size:.75rem;font-weight:600;text-transform:uppercase;padding:0 .35rem;border-radius:2px;background:#dde9f7;color:#1e4b80;margin-right:.4rem}
.card[data-indicator=warning] .indicator{background:#fdebc8;color:#7a4d00}
.card[data-indicator=critical] .indicator{background:#f8d3d4;color:#86060a}
.card h3{display:inline;font-size:1rem;margin:0}
.card .source{font-size:.8rem;color:#52616f;margin:.2rem 0 .4rem}
.card blockquote{margin:.4rem 0;padding:.3rem .6rem;background:#fff4d6;border-left:3px solid #d98b00}
.card ul{margin:.2rem 0 .4rem 1.2rem;padding:0}
.card p{margin:.3rem 0}
.card .suggestions{font-size:.9rem}
.card .links{display:flex;gap:.5rem;flex-wrap:wrap;margin-top:.4rem}
.chart{margin-top:1.2rem}
.chart h2,.cards-head{font-size:1rem;margin:.8rem 0 .3rem}
.chart ul{list-style:none;margin:0;padding:0}
.chart li{background:#fff;border:1px solid #c7d3e0;border-radius:4px;padding:.4rem .6rem;margin:.3rem 0}
.chart pre{white-space:pre-wrap;font:inherit;font-size:.85rem;margin:.3rem 0 0;max-height:7.5em;overflow:auto}
aside.panel{width:482px;flex:none;border-left:1px solid #9fb1c4;background:#fff;position:sticky;top:0;height:100vh;display:flex;flex-direction:column}
aside.panel[hidden]{display:none}
aside.panel .bar{display:flex;justify-content:space-between;align-items:center;padding:.3rem .5rem;background:#dfe7ef;font-size:.9rem}
aside.panel iframe{width:480px;flex:1;border:0}
@media (max-width:900px){.layout{flex-direction:column}aside.panel{width:100%;height:80vh;position:static}aside.panel iframe{width:100%}}
`;

const SCRIPT = `
(function () {
  'use strict';
  var $ = function (id) { return document.getElementById(id); };
  var state = { patients: [], patient: null, hook: null, polls: 0, timer: null };
  var MAX_POLLS = 40;

  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (k === 'text') e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]); });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function inlines(parent, list) {
    list.forEach(function (i) { parent.appendChild(i.strong ? el('strong', { text: i.text }) : document.createTextNode(i.text)); });
    return parent;
  }
  function status(text, isError) { var s = $('status'); s.textContent = text; s.className = isError ? 'status error' : 'status'; }
  function api(method, path, body) {
    var init = { method: method, headers: { accept: 'application/json' } };
    if (body) { init.headers['content-type'] = 'application/json'; init.body = JSON.stringify(body); }
    return fetch(path, init).then(function (r) {
      return r.json().catch(function () { return {}; }).then(function (j) {
        if (!r.ok) throw new Error(j.error || ('HTTP ' + r.status));
        return j;
      });
    });
  }
  function current() { return state.patients.filter(function (p) { return p.id === state.patient; })[0]; }
  function setBusy(b) { ['open-chart', 'sign-order', 'launch', 'launch-tab'].forEach(function (id) { $(id).disabled = b || !state.patient; }); }

  function showBanner() {
    var p = current(), b = $('banner');
    b.textContent = '';
    if (!p) { b.hidden = true; return; }
    b.hidden = false;
    b.appendChild(el('strong', { text: p.name }));
    var bits = [p.gender, p.birthDate ? 'born ' + p.birthDate : null, p.mrn ? 'MRN ' + p.mrn : null, p.fixture ? 'fixture: ' + p.fixture : null].filter(Boolean);
    b.appendChild(document.createTextNode(' \\u2014 ' + bits.join(', ')));
    if (p.scenario) b.appendChild(el('div', { class: 'scenario', text: 'Sandbox scenario: ' + p.scenario }));
  }

  function renderCard(c) {
    var card = el('article', { class: 'card', 'data-indicator': c.indicator, 'data-pending': String(c.pending) });
    var head = el('div', {}, [el('span', { class: 'indicator', text: c.indicator }), el('h3', { text: c.summary })]);
    card.appendChild(head);
    var src = el('div', { class: 'source' }, [document.createTextNode('Source: ')]);
    if (c.source.url) src.appendChild(el('a', { href: c.source.url, target: '_blank', rel: 'noopener noreferrer', text: c.source.label }));
    else src.appendChild(document.createTextNode(c.source.label));
    card.appendChild(src);
    var detail = el('div', { class: 'detail' });
    c.detail.forEach(function (b) {
      if (b.kind === 'list') detail.appendChild(el('ul', {}, b.items.map(function (it) { return inlines(el('li'), it); })));
      else detail.appendChild(inlines(el(b.kind === 'quote' ? 'blockquote' : 'p'), b.inlines));
    });
    card.appendChild(detail);
    if (c.suggestions.length) {
      card.appendChild(el('div', { class: 'suggestions' }, [el('strong', { text: 'Suggestions' }), el('ul', {}, c.suggestions.map(function (s) { return el('li', { text: s }); }))]));
    }
    if (c.links.length) {
      var links = el('div', { class: 'links' });
      c.links.forEach(function (l) {
        var btn = el('button', { type: 'button', class: l.type === 'smart' ? 'primary' : '', 'data-link-type': l.type, text: l.label });
        btn.addEventListener('click', function () {
          if (l.type === 'smart') launch({ url: l.url, appContext: l.appContext }, 'panel');
          else window.open(l.url, '_blank', 'noopener,noreferrer');
        });
        links.appendChild(btn);
      });
      card.appendChild(links);
    }
    return card;
  }

  function showCards(cards) {
    var box = $('cards');
    box.textContent = '';
    if (!cards.length) box.appendChild(el('p', { class: 'none', text: 'No cards: the service had no guidance for this call.' }));
    cards.forEach(function (c) { box.appendChild(renderCard(c)); });
  }

  function runHook(hook, isPoll) {
    if (!state.patient) return;
    clearTimeout(state.timer);
    if (!isPoll) state.polls = 0;
    state.hook = hook;
    setBusy(true);
    $('again').hidden = true;
    status((isPoll ? 'Asking again: ' : 'Sending ') + hook + ' (signed CDS Hooks call)\\u2026');
    api('POST', '/api/hook', { hook: hook, patientId: state.patient }).then(function (r) {
      setBusy(false);
      $('cards-head').textContent = 'Cards from ' + hook;
      if (r.status !== 200) { showCards([]); status('The service answered HTTP ' + r.status + ': ' + (r.error || ''), true); return; }
      showCards(r.cards);
      $('again').hidden = false;
      var pending = r.cards.some(function (c) { return c.pending; });
      if (pending && state.polls < MAX_POLLS) {
        state.polls += 1;
        status('The analysis is running in the background; asking again in 3 s (' + state.polls + ' of ' + MAX_POLLS + '), as on the next chart action.');
        state.timer = setTimeout(function () { runHook(hook, true); }, 3000);
      } else {
        status(hook + ': ' + r.cards.length + ' card' + (r.cards.length === 1 ? '' : 's') + '.' + (pending ? ' Still running: use Ask again.' : ''));
      }
    }).catch(function (e) { setBusy(false); status(e.message, true); });
  }

  function launch(link, where) {
    if (!state.patient) return;
    var win = where === 'tab' ? window.open('about:blank', '_blank') : null;
    status('Launching VOLMO (SMART EHR launch)\\u2026');
    api('POST', '/api/launch', Object.assign({ patientId: state.patient }, link || {})).then(function (r) {
      if (win) { win.opener = null; win.location.href = r.url; status('VOLMO opened in a new tab.'); return; }
      $('panel').hidden = false;
      $('app').src = r.url;
      status('VOLMO opened in the side panel' + (link && link.appContext ? ' from the card\\u2019s link.' : '.'));
    }).catch(function (e) { if (win) win.close(); status(e.message, true); });
  }

  function loadChart() {
    if (!state.patient) return;
    var list = $('chart-list');
    api('GET', '/api/chart?patient=' + encodeURIComponent(state.patient)).then(function (r) {
      list.textContent = '';
      if (!r.entries.length) list.appendChild(el('li', { text: 'Nothing filed for this patient.' }));
      r.entries.forEach(function (e) {
        var li = el('li', { 'data-type': e.type, 'data-status': e.status }, [
          el('strong', { text: e.title }),
          document.createTextNode(' \\u2014 ' + e.type + ', ' + e.status + (e.performer.length ? ', by ' + e.performer.join(', ') : '') + (e.updated ? ', ' + e.updated : '')),
        ]);
        if (e.text) li.appendChild(el('pre', { text: e.text }));
        list.appendChild(li);
      });
    }).catch(function (e) { status(e.message, true); });
  }

  function choose(id) {
    clearTimeout(state.timer);
    state.patient = id || null;
    $('cards').textContent = '';
    $('cards-head').textContent = '';
    $('again').hidden = true;
    $('chart-list').textContent = '';
    status('');
    showBanner();
    setBusy(false);
    if (state.patient) loadChart();
  }

  $('patient').addEventListener('change', function (e) { choose(e.target.value); });
  $('open-chart').addEventListener('click', function () { runHook('patient-view'); });
  $('sign-order').addEventListener('click', function () { runHook('order-sign'); });
  $('again').addEventListener('click', function () { if (state.hook) runHook(state.hook); });
  $('launch').addEventListener('click', function () { launch(null, 'panel'); });
  $('launch-tab').addEventListener('click', function () { launch(null, 'tab'); });
  $('close-panel').addEventListener('click', function () { $('panel').hidden = true; $('app').src = 'about:blank'; });
  $('refresh-chart').addEventListener('click', loadChart);

  api('GET', '/api/patients').then(function (r) {
    state.patients = r.patients;
    $('who').textContent = 'Signed in as ' + r.clinician + ' (sandbox clinician)';
    var sel = $('patient');
    r.patients.forEach(function (p) { sel.appendChild(el('option', { value: p.id, text: p.name + (p.fixture ? ' (' + p.fixture + ')' : '') })); });
    setBusy(false);
    status(r.patients.length + ' patients on the sandbox FHIR server. Pick one.');
  }).catch(function (e) { status('Could not list patients: ' + e.message, true); });
})();
`;

export function renderEhrPage(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox EHR — volmo-cds</title>
<style nonce="${nonce}">${STYLE}</style></head>
<body>
<header class="ehr"><h1>Sandbox EHR</h1><span class="who" id="who"></span></header>
<div class="sandbox-note" role="note">A stand-in EHR for trying volmo-cds: synthetic fixture patients on the local sandbox FHIR server. Nothing here is a real patient or a real EHR.</div>
<div class="layout">
<main>
  <div class="pick"><label for="patient">Patient</label><select id="patient"><option value="">— choose a patient —</option></select></div>
  <div class="banner" id="banner" hidden></div>
  <div class="actions">
    <button type="button" id="open-chart" disabled>Open the chart</button>
    <button type="button" id="sign-order" disabled>Sign an eye-exam order</button>
    <button type="button" id="launch" class="primary" disabled>Launch VOLMO</button>
    <button type="button" id="launch-tab" disabled>Launch VOLMO in a new tab</button>
  </div>
  <div class="status" id="status" role="status" aria-live="polite"></div>
  <h2 class="cards-head" id="cards-head"></h2>
  <section class="cards" id="cards" aria-label="CDS cards"></section>
  <button type="button" id="again" hidden>Ask again</button>
  <section class="chart" aria-labelledby="chart-head"><h2 id="chart-head">In the chart: reports and notes</h2>
    <button type="button" id="refresh-chart">Refresh</button><ul id="chart-list"></ul></section>
</main>
<aside class="panel" id="panel" hidden aria-label="VOLMO side panel">
  <div class="bar"><span>VOLMO (SMART app)</span><button type="button" id="close-panel">Close</button></div>
  <iframe id="app" title="VOLMO" src="about:blank"></iframe>
</aside>
</div>
<script nonce="${nonce}">${SCRIPT}</script>
</body></html>`;
}
