/**
 * index.html: one self-contained page rendered from report.json alone. It works from file:// with
 * no network: the CSS and the script are inline, and a Content-Security-Policy allows those two
 * blocks (by hash) and nothing else.
 *
 * Every string in a report may come from an attacker (object, program, type and field names are
 * BTF strings). None of them is written into the HTML: the report is embedded as JSON in a
 * `<script type="application/json">` block, with `<`, `>`, `&`, U+2028 and U+2029 written as
 * \u escapes (a `</script>` in a name cannot end the block), and the page script builds the DOM
 * with createElement and textContent only.
 */
import { createHash } from 'node:crypto';
import type { Report } from './schema.js';

/** JSON that can sit inside a `<script>` element: no `<`, `>`, `&`, U+2028 or U+2029 left raw. */
export function embedJson(value: unknown): string {
  const json = JSON.stringify(value) ?? 'null';
  return json.replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function renderHtml(report: Report): string {
  const csp = [
    "default-src 'none'",
    `script-src '${cspHash(SCRIPT)}'`,
    `style-src '${cspHash(STYLE)}'`,
    "img-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
  ].join('; ');
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>corematrix report</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>corematrix report</h1><p id="meta"></p></header>
<noscript><p>This report is drawn by its inline script: enable JavaScript, or read report.json.</p></noscript>
<section id="expectations" aria-label="Expectations" class="hidden"></section>
<section id="filters" aria-label="Filters"></section>
<section id="grid-section" aria-label="Objects by kernel"><div id="grid-wrap"></div></section>
<section id="detail" aria-live="polite"><p class="hint">Click a cell to see its programs and relocations.</p></section>
<section id="fields" aria-label="Fields across kernels"></section>
<script type="application/json" id="report-data">${embedJson(report)}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}

function cspHash(text: string): string {
  return `sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}`;
}

const STYLE = `
*{box-sizing:border-box}
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0 1.5rem 2rem;color:#1d232b;background:#fff}
h1{font-size:1.4rem;margin:1rem 0 .2rem}
h2{font-size:1.15rem;margin:1.2rem 0 .5rem}
h3{font-size:1rem;margin:.8rem 0 .3rem}
#meta{margin:0;color:#4a5563}
pre{background:#f4f5f7;border:1px solid #dde1e6;padding:.5rem;overflow:auto;max-height:22rem;white-space:pre-wrap;word-break:break-all;font-size:12px}
code,.mono{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:12.5px;overflow-wrap:anywhere}
#filters{display:flex;flex-wrap:wrap;gap:.5rem 1.2rem;align-items:center;margin:.8rem 0;padding:.6rem .8rem;background:#f7f8fa;border:1px solid #e2e5ea;border-radius:6px}
#filters label{white-space:nowrap}
.legend{display:flex;flex-wrap:wrap;gap:.3rem .8rem;margin:0;padding:0;border:0}
.legend label{display:inline-flex;gap:.3rem;align-items:center;cursor:pointer}
.swatch{display:inline-block;min-width:1.6rem;padding:0 .25rem;text-align:center;border-radius:3px;font-weight:600}
#count{color:#4a5563}
#grid-wrap{overflow:auto;max-height:75vh;border:1px solid #e2e5ea;border-radius:6px}
table{border-collapse:collapse}
.grid th,.grid td{border:1px solid #e2e5ea;padding:2px}
.grid thead th{position:sticky;top:0;background:#fff;z-index:2;font-weight:600;padding:.3rem .4rem;max-width:11rem;overflow-wrap:anywhere;vertical-align:bottom}
.grid tbody th{position:sticky;left:0;background:#fff;z-index:1;text-align:left;font-weight:500;padding:.2rem .5rem;max-width:22rem;overflow-wrap:anywhere}
.grid thead th.corner{left:0;z-index:3;text-align:left;color:#4a5563;font-weight:400}
button.cell{display:block;width:100%;min-width:6.5rem;border:1px solid transparent;border-radius:3px;padding:.25rem .35rem;font:inherit;text-align:left;cursor:pointer;line-height:1.2}
button.cell .sub{display:block;font-size:11.5px;opacity:.8}
button.cell:hover,button.cell:focus-visible{outline:2px solid #1d232b;outline-offset:-1px}
button.cell.selected{outline:3px solid #1a56db;outline-offset:-2px}
td.off button.cell{visibility:hidden}
td.missing{color:#9aa3ad;text-align:center}
.hidden{display:none}
.st-ok{background:#b9e6c9;color:#0f4d26}
.st-needs-guard{background:#ffe08a;color:#5c4300}
.st-failing{background:#f6a7a7;color:#6d0f0f}
.st-infra_error{background:#d5d9e0;color:#333b47;border-style:dashed!important;border-color:#7c8696!important}
.st-error{background:#a3154a;color:#fff}
.st-unknown{background:#fff;color:#1d232b;border-color:#999!important}
.cl-resolved{background:#b9e6c9;color:#0f4d26}
.cl-guarded{background:#cfe3ff;color:#0d3a7a}
.cl-needs-guard{background:#ffe08a;color:#5c4300}
.cl-error{background:#a3154a;color:#fff}
.badge{display:inline-block;padding:0 .35rem;border-radius:3px;font-size:12px;font-weight:600;white-space:nowrap}
.v-good{background:#b9e6c9;color:#0f4d26}
.v-bad{background:#f6a7a7;color:#6d0f0f}
.v-infra{background:#d5d9e0;color:#333b47}
#detail{margin-top:1rem;padding:.2rem 1rem 1rem;border:1px solid #e2e5ea;border-radius:6px}
.hint,.empty{color:#6b7480}
.problem{border-left:4px solid #a3154a;padding:.3rem .6rem;background:#fbeef3}
dl.kv{display:grid;grid-template-columns:max-content 1fr;gap:.1rem .8rem;margin:.3rem 0}
dl.kv dt{color:#4a5563}
dl.kv dd{margin:0;overflow-wrap:anywhere}
details.program{border:1px solid #e2e5ea;border-radius:5px;margin:.5rem 0;padding:.3rem .6rem}
details.program>summary{cursor:pointer;display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
details.program>summary .pname{font-weight:600;overflow-wrap:anywhere}
table.relocs,table.fieldtab{width:100%;font-size:13px}
table.relocs td.mono,table.relocs td code{min-width:7rem}
table.relocs td:nth-child(4){min-width:12rem}
table.relocs th,table.relocs td,table.fieldtab th,table.fieldtab td{border:1px solid #e2e5ea;padding:.2rem .4rem;text-align:left;vertical-align:top}
table.relocs th,table.fieldtab th{background:#f7f8fa}
td.fix{max-width:28rem}
ul.reasons{margin:.2rem 0;padding-left:1.2rem}
.fieldtab td.fc{min-width:6rem}
.fieldtab .vals{display:block;font-size:11.5px}
ul.expectations{list-style:none;margin:.3rem 0;padding:0}
ul.expectations li{margin:.25rem 0;overflow-wrap:anywhere}
ul.expectations .src{color:#4a5563;margin-left:.4rem}
ul.expectations pre{margin:.2rem 0 .4rem}
`;

// The page script: plain ES2017 for the browser. It reads the JSON block and builds every node
// with createElement/textContent; lookups by name go through Map (a name may be "__proto__").
const SCRIPT = `
(function () {
  'use strict';
  var report = JSON.parse(document.getElementById('report-data').textContent);
  var STATUSES = ['ok', 'needs-guard', 'failing', 'infra_error', 'error'];
  var STATUS_TEXT = { ok: 'ok', 'needs-guard': 'needs guard', failing: 'failing', infra_error: 'infra error', error: 'error' };
  var STATUS_HELP = {
    ok: 'every program loads',
    'needs-guard': 'loads here, but a field access is not portable without a guard',
    failing: 'a program is rejected',
    infra_error: 'the VM run failed; not a verdict',
    error: 'libbpf would refuse the object'
  };
  var MARK = { ok: '\\u2713', 'needs-guard': '!', failing: '\\u2717', infra_error: '?', error: '\\u26a0' };
  var CLASSES = ['resolved', 'guarded', 'needs-guard', 'error'];

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }
  function add(parent, child) { parent.appendChild(child); return child; }
  function known(list, v) { return list.indexOf(v) >= 0; }
  function statusClass(s) { return known(STATUSES, s) ? 'st-' + s : 'st-unknown'; }
  function classClass(c) { return known(CLASSES, c) ? 'cl-' + c : 'st-unknown'; }
  function str(v) { return v === undefined || v === null ? '' : String(v); }
  function kv(dl, key, value) {
    if (value === undefined || value === null || value === '') return;
    add(dl, el('dt', '', key));
    add(dl, el('dd', '', value));
  }

  // Kernels and objects: the report's lists, plus any a cell names that they lack.
  var kernels = [], kernelIndex = new Map(), objects = [], objectIndex = new Map();
  function addKernel(k) { if (!kernelIndex.has(k.name)) { kernelIndex.set(k.name, kernels.length); kernels.push(k); } }
  function addObject(o) { if (!objectIndex.has(o.name)) { objectIndex.set(o.name, objects.length); objects.push(o); } }
  (report.kernels || []).forEach(addKernel);
  (report.objects || []).forEach(addObject);
  var cells = report.cells || [];
  cells.forEach(function (c) {
    addKernel({ name: c.kernel, source: '', arch: '' });
    addObject({ name: c.object, path: '', sha256: '' });
  });
  var cellAt = new Map();
  cells.forEach(function (c, i) {
    c._k = kernelIndex.get(c.kernel);
    c._o = objectIndex.get(c.object);
    c._i = i;
    cellAt.set(c._o + ',' + c._k, c);
  });

  function programOk(p) {
    if (p.vm && p.vm.verdict !== 'infra_error') return p.vm.verdict === 'loaded';
    if (p.static) return p.static.verdict === 'loads';
    return true;
  }
  function relocValue(r) {
    var out = [];
    if (r.old !== undefined || r.new !== undefined) out.push(str(r.old) + ' \\u2192 ' + str(r.new));
    else if (r.result === 'poisoned') out.push('poisoned');
    return out.join('');
  }
  function haystack(c) {
    var parts = [c.object, c.kernel, c.status, c.error, c.infra && c.infra.reason];
    (c.programs || []).forEach(function (p) {
      parts.push(p.name, p.section, p.disagreement);
      if (p.static) {
        parts.push(p.static.verdict);
        (p.static.reasons || []).forEach(function (r) { parts.push(r.message); });
        (p.static.unknown || []).forEach(function (u) { parts.push(u); });
      }
      if (p.vm) parts.push(p.vm.verdict, p.vm.errnoName, p.vm.cause);
      (p.relocations || []).forEach(function (r) { parts.push(r.access, r.kind, r.classification, r.fix, r.message); });
    });
    return parts.filter(function (x) { return x; }).join('\\n').toLowerCase();
  }
  cells.forEach(function (c) { c._hay = haystack(c); });

  // ---- header
  var meta = document.getElementById('meta');
  var run = report.run || {};
  meta.textContent = cells.length + ' cells: ' + objects.length + ' objects \\u00d7 ' + kernels.length +
    ' kernels \\u00b7 tiers: ' + (run.tiers || []).join(', ') +
    (run.shard ? ' \\u00b7 shard ' + run.shard.index + '/' + run.shard.count : '') +
    ' \\u00b7 generated ' + str(report.generatedAt) +
    ' by corematrix ' + str(report.corematrix && report.corematrix.version) +
    (typeof run.durationMs === 'number' ? ' in ' + (run.durationMs / 1000).toFixed(1) + ' s' : '');

  // ---- filters (the legend is the status filter)
  var state = { status: new Set(STATUSES), kernel: -1, object: -1, text: '', fieldsAll: false };
  var counts = new Map();
  cells.forEach(function (c) { counts.set(c.status, (counts.get(c.status) || 0) + 1); });
  var filters = document.getElementById('filters');
  var legend = add(filters, el('fieldset', 'legend'));
  legend.id = 'legend';
  add(legend, el('legend', 'hidden', 'Status'));
  STATUSES.forEach(function (s) {
    var label = add(legend, el('label'));
    label.title = STATUS_HELP[s];
    var box = add(label, el('input'));
    box.type = 'checkbox';
    box.checked = true;
    box.dataset.status = s;
    box.addEventListener('change', function () {
      if (box.checked) state.status.add(s); else state.status.delete(s);
      applyFilters();
    });
    add(label, el('span', 'swatch ' + statusClass(s), MARK[s]));
    add(label, el('span', '', STATUS_TEXT[s] + ' (' + (counts.get(s) || 0) + ')'));
  });
  function selectOf(id, what, list) {
    var label = add(filters, el('label', '', what + ' '));
    var sel = add(label, el('select'));
    sel.id = id;
    var all = add(sel, el('option', '', 'all'));
    all.value = '-1';
    list.forEach(function (x, i) { var o = add(sel, el('option', '', x.name)); o.value = String(i); });
    return sel;
  }
  var kernelSel = selectOf('filter-kernel', 'Kernel', kernels);
  kernelSel.addEventListener('change', function () { state.kernel = Number(kernelSel.value); applyFilters(); });
  var objectSel = selectOf('filter-object', 'Object', objects);
  objectSel.addEventListener('change', function () { state.object = Number(objectSel.value); applyFilters(); });
  var textLabel = add(filters, el('label', '', 'Search '));
  var textBox = add(textLabel, el('input'));
  textBox.type = 'search';
  textBox.id = 'filter-text';
  textBox.placeholder = 'program, field, cause\\u2026';
  textBox.addEventListener('input', function () { state.text = textBox.value.trim().toLowerCase(); applyFilters(); });
  var countOut = add(filters, el('span'));
  countOut.id = 'count';

  // ---- grid
  var grid = el('table', 'grid');
  grid.id = 'grid';
  var headRow = add(add(grid, el('thead')), el('tr'));
  add(headRow, el('th', 'corner', 'object \\\\ kernel'));
  var colHeads = kernels.map(function (k) {
    var th = add(headRow, el('th', '', k.name));
    th.scope = 'col';
    th.title = [k.source, k.release, k.arch, k.package && k.package + ' ' + str(k.version)].filter(Boolean).join(' \\u00b7 ');
    return th;
  });
  var body = add(grid, el('tbody'));
  var rows = [], tds = [], buttons = new Map();
  objects.forEach(function (o, oi) {
    var tr = add(body, el('tr'));
    rows.push(tr);
    var th = add(tr, el('th', '', o.name));
    th.scope = 'row';
    th.title = [o.path, o.compiler].filter(Boolean).join(' \\u00b7 ');
    tds.push(kernels.map(function (k, ki) {
      var c = cellAt.get(oi + ',' + ki);
      if (!c) { var td0 = add(tr, el('td', 'missing', '\\u2014')); td0.title = 'not run'; return td0; }
      var td = add(tr, el('td'));
      var b = add(td, el('button', 'cell ' + statusClass(c.status)));
      b.type = 'button';
      b.dataset.status = known(STATUSES, c.status) ? c.status : 'unknown';
      b.dataset.cell = String(c._i);
      add(b, el('span', '', MARK[c.status] ? MARK[c.status] + ' ' + STATUS_TEXT[c.status] : str(c.status)));
      var progs = c.programs || [];
      var good = progs.filter(programOk).length;
      var ng = 0;
      progs.forEach(function (p) { (p.relocations || []).forEach(function (r) { if (r.classification === 'needs-guard') ng++; }); });
      add(b, el('span', 'sub', good + '/' + progs.length + ' programs' + (ng ? ' \\u00b7 ' + ng + ' unguarded' : '')));
      b.title = o.name + ' on ' + k.name + ': ' + str(c.status);
      b.addEventListener('click', function () { select(c); });
      buttons.set(c._i, b);
      return td;
    }));
  });
  add(document.getElementById('grid-wrap'), grid);
  if (!cells.length) add(document.getElementById('grid-wrap'), el('p', 'empty', 'This report has no cells.'));

  function cellVisible(c) {
    var statusOn = known(STATUSES, c.status) ? state.status.has(c.status) : true;
    return statusOn && (state.kernel < 0 || c._k === state.kernel) && (state.object < 0 || c._o === state.object) &&
      (!state.text || c._hay.indexOf(state.text) >= 0);
  }
  function applyFilters() {
    var rowShown = objects.map(function () { return false; });
    var colShown = kernels.map(function () { return false; });
    var shown = 0;
    cells.forEach(function (c) {
      var v = cellVisible(c);
      var td = tds[c._o][c._k];
      td.classList.toggle('off', !v);
      if (v) { shown++; rowShown[c._o] = true; colShown[c._k] = true; }
    });
    var everything = state.status.size === STATUSES.length && state.kernel < 0 && state.object < 0 && !state.text;
    rows.forEach(function (tr, oi) { tr.classList.toggle('hidden', !everything && !rowShown[oi]); });
    kernels.forEach(function (k, ki) {
      var hide = !everything && !colShown[ki];
      colHeads[ki].classList.toggle('hidden', hide);
      tds.forEach(function (row) { row[ki].classList.toggle('hidden', hide); });
    });
    countOut.textContent = shown + ' of ' + cells.length + ' cells shown';
    renderFields();
  }

  // ---- detail of one cell
  var detail = document.getElementById('detail');
  var selected = null;
  function verdictBadge(text, kind) { return el('span', 'badge ' + kind, text); }
  function select(c) {
    if (selected !== null && buttons.has(selected)) buttons.get(selected).classList.remove('selected');
    selected = c._i;
    if (buttons.has(c._i)) buttons.get(c._i).classList.add('selected');
    try { history.replaceState(null, '', '#cell=' + c._i); } catch (e) { /* some file:// pages refuse it */ }
    detail.replaceChildren();
    var h = add(detail, el('h2'));
    h.id = 'detail-title';
    add(h, el('span', 'swatch ' + statusClass(c.status), MARK[c.status] || '?'));
    add(h, document.createTextNode(' ' + c.object + ' on ' + c.kernel + ' \\u2014 ' + (STATUS_TEXT[c.status] || str(c.status))));
    var k = kernels[c._k] || {}, o = objects[c._o] || {};
    var dl = add(detail, el('dl', 'kv'));
    kv(dl, 'kernel', [k.source, k.release, k.arch].filter(Boolean).join(' \\u00b7 '));
    kv(dl, 'package', k.package ? k.package + ' ' + str(k.version) : '');
    kv(dl, 'object', o.path);
    kv(dl, 'sha256', o.sha256);
    kv(dl, 'compiler', o.compiler);
    if (c.timings) {
      kv(dl, 'timings', ['staticMs', 'bootMs', 'loadMs'].filter(function (t) { return typeof c.timings[t] === 'number'; })
        .map(function (t) { return t.replace('Ms', '') + ' ' + Math.round(c.timings[t]) + ' ms'; }).join(', '));
    }
    if (c.error) {
      var pe = add(detail, el('p', 'problem'));
      pe.id = 'cell-error';
      add(pe, el('strong', '', 'libbpf would refuse the object: '));
      add(pe, document.createTextNode(c.error));
    }
    if (c.infra) {
      var pi = add(detail, el('p', 'problem'));
      pi.id = 'cell-infra';
      add(pi, el('strong', '', 'Infrastructure error (not a verdict): '));
      add(pi, document.createTextNode(str(c.infra.reason)));
      if (c.infra.consoleTail) { add(detail, el('h3', '', 'Console tail')); add(detail, el('pre', '', c.infra.consoleTail)); }
    }
    var progs = c.programs || [];
    add(detail, el('h3', '', progs.length + (progs.length === 1 ? ' program' : ' programs')));
    progs.forEach(function (p) { add(detail, programView(p, progs.length <= 6)); });
    if (!progs.length) add(detail, el('p', 'empty', 'No programs.'));
  }
  function programView(p, openAll) {
    var d = el('details', 'program');
    var relocs = p.relocations || [];
    var interesting = !programOk(p) || relocs.some(function (r) { return r.classification === 'needs-guard' || r.classification === 'error'; });
    d.open = openAll || interesting;
    var s = add(d, el('summary'));
    add(s, el('span', 'pname', p.name));
    add(s, el('code', '', p.section));
    if (p.static) add(s, verdictBadge('static: ' + p.static.verdict, p.static.verdict === 'loads' ? 'v-good' : 'v-bad'));
    if (p.vm) {
      add(s, verdictBadge('vm: ' + p.vm.verdict, p.vm.verdict === 'loaded' ? 'v-good' : p.vm.verdict === 'infra_error' ? 'v-infra' : 'v-bad'));
    }
    if (p.disagreement) add(d, el('p', 'problem', 'The tiers disagree: ' + p.disagreement));
    if (p.vm) {
      var dl = add(d, el('dl', 'kv'));
      kv(dl, 'errno', p.vm.errno !== undefined ? p.vm.errno + (p.vm.errnoName ? ' (' + p.vm.errnoName + ')' : '') : p.vm.errnoName);
      kv(dl, 'cause', p.vm.cause);
      kv(dl, 'insns processed', p.vm.insnsProcessed);
      if (p.vm.logExcerpt) { add(d, el('div', '', 'Verifier log (excerpt)')); add(d, el('pre', 'vlog', p.vm.logExcerpt)); }
    }
    if (p.static && ((p.static.reasons || []).length || (p.static.unknown || []).length)) {
      add(d, el('div', '', 'Static tier'));
      var ul = add(d, el('ul', 'reasons'));
      (p.static.reasons || []).forEach(function (r) { add(ul, el('li', '', r.source + ': ' + r.message)); });
      (p.static.unknown || []).forEach(function (u) { add(ul, el('li', '', 'cannot see: ' + u)); });
    }
    if (!relocs.length) { add(d, el('p', 'empty', 'No CO-RE relocations.')); return d; }
    var t = add(d, el('table', 'relocs'));
    var hr = add(add(t, el('thead')), el('tr'));
    ['#', 'insn', 'kind', 'access', 'local \\u2192 target', 'classification', 'fix'].forEach(function (x) { add(hr, el('th', '', x)); });
    var tb = add(t, el('tbody'));
    relocs.forEach(function (r) {
      var tr = add(tb, el('tr', 'reloc'));
      add(tr, el('td', '', r.index));
      add(tr, el('td', '', r.insn));
      add(tr, el('td', 'mono', r.kind));
      var ta = add(tr, el('td'));
      add(ta, el('code', '', r.access));
      add(ta, el('div', 'mono', r.function + ' ' + r.spec));
      var tv = add(tr, el('td', 'mono'));
      var v = relocValue(r);
      if (v) add(tv, el('div', '', v));
      if (r.localSpec && r.targetSpec) add(tv, el('div', '', r.localSpec + ' \\u2192 ' + r.targetSpec));
      else if (r.localSpec || r.targetSpec) add(tv, el('div', '', (r.localSpec ? 'local ' : 'target ') + (r.localSpec || r.targetSpec)));
      if (r.message) add(tv, el('div', '', r.message));
      var tc = add(tr, el('td'));
      add(tc, el('span', 'badge ' + classClass(r.classification), r.classification));
      if (r.result !== 'patched') add(tc, el('div', '', r.result));
      add(tr, el('td', 'fix', r.fix || ''));
    });
    return d;
  }

  // ---- per-field view: every access, its classification on each kernel (over the objects shown)
  var fieldsSection = document.getElementById('fields');
  add(fieldsSection, el('h2', '', 'Fields across kernels'));
  var fieldsOpt = add(fieldsSection, el('label', '', ' show fields resolved everywhere too'));
  var fieldsBox = el('input');
  fieldsBox.type = 'checkbox';
  fieldsBox.id = 'fields-all';
  fieldsOpt.insertBefore(fieldsBox, fieldsOpt.firstChild);
  fieldsBox.addEventListener('change', function () { state.fieldsAll = fieldsBox.checked; renderFields(); });
  var fieldsBody = add(fieldsSection, el('div'));
  var fieldMap = new Map();
  cells.forEach(function (c) {
    (c.programs || []).forEach(function (p) {
      (p.relocations || []).forEach(function (r) {
        var key = r.access + '\\u0000' + r.kind;
        var f = fieldMap.get(key);
        if (!f) { f = { access: r.access, kind: r.kind, uses: [], worst: -1, hay: '' }; fieldMap.set(key, f); }
        f.uses.push({ cell: c, program: p, reloc: r });
        f.worst = Math.max(f.worst, CLASSES.indexOf(r.classification));
        f.hay += '\\n' + [r.access, r.kind, r.fix, c.object, p.name].join('\\n').toLowerCase();
      });
    });
  });
  var fields = Array.from(fieldMap.values()).sort(function (a, b) {
    return b.worst - a.worst || (a.access < b.access ? -1 : a.access > b.access ? 1 : a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : 0);
  });
  function renderFields() {
    fieldsBody.replaceChildren();
    var ks = kernels.map(function (k, i) { return i; }).filter(function (i) { return state.kernel < 0 || i === state.kernel; });
    var shown = fields.filter(function (f) {
      if (!state.fieldsAll && f.worst <= 0) return false;
      if (state.text && f.hay.indexOf(state.text) < 0) return false;
      return f.uses.some(function (u) { return state.object < 0 || u.cell._o === state.object; });
    });
    if (!shown.length) {
      add(fieldsBody, el('p', 'empty', fields.length ? 'No field matches the filters.' : 'No CO-RE relocations in this report.'));
      return;
    }
    var t = add(fieldsBody, el('table', 'fieldtab'));
    t.id = 'fieldtab';
    var hr = add(add(t, el('thead')), el('tr'));
    add(hr, el('th', '', 'access'));
    add(hr, el('th', '', 'kind'));
    ks.forEach(function (ki) { add(hr, el('th', '', kernels[ki].name)); });
    var tb = add(t, el('tbody'));
    shown.forEach(function (f) {
      var tr = add(tb, el('tr', 'field'));
      add(add(tr, el('td')), el('code', 'access', f.access));
      add(tr, el('td', 'mono', f.kind));
      ks.forEach(function (ki) {
        var uses = f.uses.filter(function (u) { return u.cell._k === ki && (state.object < 0 || u.cell._o === state.object); });
        var td = add(tr, el('td', 'fc'));
        td.dataset.kernel = String(ki);
        if (!uses.length) { td.textContent = '\\u2014'; td.title = 'not used on this kernel'; return; }
        var byClass = new Map(), vals = new Set(), who = [];
        uses.forEach(function (u) {
          byClass.set(u.reloc.classification, (byClass.get(u.reloc.classification) || 0) + 1);
          var v = relocValue(u.reloc);
          if (v) vals.add(v);
          who.push(u.cell.object + ': ' + u.program.name + ' (' + u.reloc.classification + ')');
        });
        var worst = -1;
        byClass.forEach(function (n, cl) { worst = Math.max(worst, CLASSES.indexOf(cl)); });
        td.className = 'fc ' + (worst >= 0 ? classClass(CLASSES[worst]) : 'st-unknown');
        td.dataset.classification = worst >= 0 ? CLASSES[worst] : 'unknown';
        var parts = [];
        byClass.forEach(function (n, cl) { parts.push(byClass.size > 1 ? cl + ' \\u00d7' + n : cl); });
        add(td, el('span', '', parts.join(', ')));
        if (vals.size) add(td, el('span', 'vals mono', Array.from(vals).slice(0, 3).join(', ') + (vals.size > 3 ? ', \\u2026' : '')));
        td.title = who.slice(0, 20).join('\\n') + (who.length > 20 ? '\\n\\u2026' : '');
      });
    });
  }

  // ---- expectations (matrix.yaml expect:, case files): unmet first, with what broke them
  var expectations = Array.isArray(report.expectations) ? report.expectations : [];
  if (expectations.length) {
    var exSection = document.getElementById('expectations');
    exSection.classList.remove('hidden');
    var EX_ORDER = ['failed', 'skipped', 'passed'];
    var EX_TEXT = { failed: 'unmet', skipped: 'not checked', passed: 'met' };
    var EX_CLASS = { failed: 'v-bad', skipped: 'v-infra', passed: 'v-good' };
    var exCount = function (st) { return expectations.filter(function (x) { return x.status === st; }).length; };
    add(exSection, el('h2', '', 'Expectations'));
    add(exSection, el('p', '', exCount('passed') + ' met, ' + exCount('failed') + ' unmet' +
      (exCount('skipped') ? ', ' + exCount('skipped') + ' not checked in this run' : '')));
    // Unmet ones stay in sight; the met (and unchecked) ones fold away, so a green run opens on the
    // grid rather than on a long list of what held.
    var unmetList = add(exSection, el('ul', 'expectations'));
    var rest = expectations.length - exCount('failed');
    var restList = null;
    if (rest > 0) {
      var fold = add(exSection, el('details', 'expectations-rest'));
      add(fold, el('summary', '', rest + (exCount('failed') ? ' more' : '') + ' (met or not checked)'));
      restList = add(fold, el('ul', 'expectations'));
    }
    expectations.slice().sort(function (a, b) {
      return EX_ORDER.indexOf(a.status) - EX_ORDER.indexOf(b.status);
    }).forEach(function (x) {
      var li = add(x.status === 'failed' ? unmetList : restList, el('li'));
      li.dataset.status = known(EX_ORDER, x.status) ? x.status : 'unknown';
      add(li, verdictBadge(EX_TEXT[x.status] || str(x.status), EX_CLASS[x.status] || 'v-infra'));
      add(li, document.createTextNode(' '));
      add(li, el('span', 'mono', x.name));
      add(li, el('span', 'src', str(x.source) + (Array.isArray(x.kernels) && x.kernels.length ? ' \u2014 ' + x.kernels.join(', ') : '')));
      if (x.message) add(li, el(x.status === 'failed' ? 'pre' : 'div', x.status === 'failed' ? '' : 'hint', x.message));
    });
  }

  applyFilters();
  var m = /^#cell=(\\d+)$/.exec(location.hash);
  if (m && cells[Number(m[1])]) select(cells[Number(m[1])]);
})();
`;
