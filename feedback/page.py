"""The feedback page's HTML, CSS and script (pure data; :mod:`upbringing.feedback.web` serves them). The placeholders
``{{csrf}}``, ``{{name}}``, ``{{raters}}`` and ``{{rows}}`` are filled in by the app, HTML-escaped."""

from __future__ import annotations

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f6f6f4;color:#222}
header{display:flex;gap:1.2em;align-items:center;padding:.6em 1em;background:#2d3a4a;color:#fff;flex-wrap:wrap}
header a{color:#cde}
main{padding:1em}
.pair{display:grid;grid-template-columns:1fr 1fr;gap:1em}
.side{background:#fff;border:1px solid #ccc;border-radius:6px;padding:.6em 1em}
.side h2{margin:.2em 0}
.meta{color:#555;font-size:.9em}
ol{padding-left:1.6em}
li.step{margin:.35em 0;padding:.25em .4em;border-radius:4px;cursor:pointer}
li.step:hover{background:#eef3f8}
li.step.decisive{background:#ffe9a8;outline:2px solid #d9a400}
.situation{white-space:pre-wrap}
.action{font-weight:600}
.ev{display:inline-block;background:#fbe0e0;color:#900;border-radius:3px;padding:0 .3em;margin-right:.3em;
  font-size:.85em}
.answers{display:flex;gap:.6em;margin:1em 0;flex-wrap:wrap}
.answers button{font-size:1.05em;padding:.5em 1em}
kbd{background:#eee;border:1px solid #aaa;border-radius:3px;padding:0 .3em;font-size:.85em}
#status{min-height:1.4em;color:#064}
#status.err{color:#a00}
progress{width:12em}
img{max-width:100%}
table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:.3em .7em}
"""

PAGE = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Upbringing feedback</title>
<meta name="csrf" content="{{csrf}}"><style>"""
    + STYLE
    + """</style></head><body>
<header><strong>Upbringing: which episode is better?</strong>
<label>Your name <input id="name" value="{{name}}" size="14" autocomplete="off"></label>
<span><progress id="bar" value="0" max="1"></progress> <span id="progress"></span></span>
<a href="/agreement" target="_blank">agreement</a></header>
<main>
<div id="status" role="status"></div>
<div id="query"></div>
<div class="answers" id="buttons" hidden>
<button id="ans-a" data-answer="a">A is better <kbd>1</kbd>/<kbd>a</kbd></button>
<button id="ans-b" data-answer="b">B is better <kbd>2</kbd>/<kbd>b</kbd></button>
<button id="ans-equal" data-answer="equal">Equally good <kbd>=</kbd>/<kbd>e</kbd></button>
<button id="ans-skip" data-answer="skip">Can't tell (skip) <kbd>s</kbd></button>
</div>
<p class="meta">Optional: click the step that decided it (click again to clear). Answers are saved at once and the
training run reads them at its next chunk boundary.</p>
</main>
<script>
"use strict";
const csrf = document.querySelector('meta[name=csrf]').content;
const nameBox = document.getElementById('name');
nameBox.value = localStorage.getItem('upbringing-rater') || nameBox.value;
let current = null, decisive = null, busy = false;
function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}
function status(msg, err) {
  const s = document.getElementById('status');
  s.textContent = msg; s.className = err ? 'err' : '';
}
function showProgress(p) {
  const budget = p.budget ? `, budget ${p.budget}` : '';
  document.getElementById('progress').textContent = `${p.answered} of ${p.asked} answered${budget}`;
  const bar = document.getElementById('bar');
  bar.max = Math.max(p.asked, 1); bar.value = p.answered;
}
function side(label, key, s) {
  const box = el('section', 'side'); box.id = 'side-' + key;
  box.appendChild(el('h2', null, label));
  const level = s.level === null ? '' : `, level ${s.level}`;
  box.appendChild(el('div', 'meta', `stage ${s.stage}${s.env ? ' (' + s.env + ')' : ''}${level}; ` +
    `${s.steps.length} steps, task reward ${s.total_reward}`));
  if (s.picture) {
    const img = el('img'); img.alt = 'state of ' + label + ' step by step';
    img.src = `/picture/${encodeURIComponent(current.id)}/${key}.png`; box.appendChild(img);
  }
  const ol = el('ol');
  s.steps.forEach((st, i) => {
    const li = el('li', 'step'); li.dataset.side = key; li.dataset.step = i;
    if (st.repeated) li.appendChild(el('div', 'meta', `(${st.repeated} line(s) as in the step before)`));
    li.appendChild(el('div', 'situation', st.situation));
    if (st.action) li.appendChild(el('div', 'action', '\\u2192 ' + st.action));
    const line = el('div', 'meta', `reward ${st.reward} `);
    for (const [k, v] of Object.entries(st.events)) line.appendChild(el('span', 'ev', `${k} ${v}`));
    li.appendChild(line);
    li.addEventListener('click', () => {
      const same = decisive && decisive.side === key && decisive.step === i;
      document.querySelectorAll('li.decisive').forEach(x => x.classList.remove('decisive'));
      decisive = same ? null : {side: key, step: i};
      if (!same) li.classList.add('decisive');
    });
    ol.appendChild(li);
  });
  box.appendChild(ol);
  return box;
}
async function load() {
  const r = await fetch('/api/next?rater=' + encodeURIComponent(nameBox.value));
  const data = await r.json();
  if (!r.ok) { status(data.error, true); return; }
  showProgress(data.progress);
  current = data.query; decisive = null;
  const q = document.getElementById('query'); q.replaceChildren();
  document.getElementById('buttons').hidden = !current;
  if (!current) { q.appendChild(el('p', null, 'No pending queries for you. Thank you!')); return; }
  q.appendChild(el('div', 'meta', 'query ' + current.id));
  const pair = el('div', 'pair');
  pair.appendChild(side('A', 'a', current.a)); pair.appendChild(side('B', 'b', current.b));
  q.appendChild(pair);
}
async function answer(choice) {
  if (!current || busy) return;
  busy = true;
  try {
    const r = await fetch('/api/answer', {method: 'POST',
      headers: {'Content-Type': 'application/json', 'X-CSRF-Token': csrf},
      body: JSON.stringify({query_id: current.id, rater: nameBox.value, answer: choice, decisive: decisive})});
    const data = await r.json();
    if (!r.ok) { status(data.error, true); return; }
    status(`${current.id}: ${data.message}`);
    await load();
  } catch (e) { status('not saved: ' + e, true); } finally { busy = false; }
}
document.querySelectorAll('#buttons button').forEach(b => b.addEventListener('click', () => answer(b.dataset.answer)));
const KEYS = {'1': 'a', 'a': 'a', '2': 'b', 'b': 'b', '=': 'equal', 'e': 'equal', 's': 'skip'};
document.addEventListener('keydown', e => {
  if (e.target === nameBox || e.ctrlKey || e.metaKey || e.altKey) return;
  const k = KEYS[e.key];
  if (k) { e.preventDefault(); answer(k); }
});
nameBox.addEventListener('keydown', e => { if (e.key === 'Enter') nameBox.blur(); });  // back to the shortcuts
nameBox.addEventListener('change', () => {
  localStorage.setItem('upbringing-rater', nameBox.value); status(''); load();
});
load();
</script></body></html>"""
)

AGREEMENT = (
    """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Upbringing feedback: agreement</title><style>"""
    + STYLE
    + """</style></head><body><header><strong>Agreement between raters</strong><a href="/">back to the queries</a>
</header><main><ul>{{raters}}</ul>
<p class="meta">Each person against every other source, on the queries both labelled (skips left out). The reward
model is its prediction when the query was asked (before training on that chunk), counted on strict preferences.</p>
<table><thead><tr><th>rater</th><th>compared with</th><th>queries</th><th>agree</th></tr></thead>
<tbody>{{rows}}</tbody></table></main></body></html>"""
)
