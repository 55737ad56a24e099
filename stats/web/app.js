/* Slotway stats page. Renders GET /api/v1/status (schema: stats/status.go)
 * and refreshes it every second, updating the DOM in place. No dependencies;
 * the Scaling panel is in scaler.js, which this file hands its helpers to. */
(function () {
  'use strict';

  const POLL_MS = 1000, TIMEOUT_MS = 3000, SLOTS = 16384, GRID = 128, WINDOW_MS = 15 * 60 * 1000;
  const TOKEN_KEY = 'slotway.admin_token';
  const PALETTE = ['#4e79a7', '#f28e2b', '#76b7b2', '#b07aa1', '#edc948', '#9c755f',
    '#ff9da7', '#59a14f', '#e15759', '#86bcb6', '#d4a6c8', '#8cd17d'];

  const colors = {};         // master address -> colour, stable for the page's life
  let last = null;           // last status rendered
  let lastOK = Date.now();   // when the last good status arrived
  let timer = 0;

  // ---------- helpers ----------
  const $ = (id) => document.getElementById(id);
  const ESC = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
  const esc = (s) => String(s == null ? '' : s).replace(/[&<>"']/g, (c) => ESC[c]);
  function setText(el, t) {
    if (typeof el === 'string') el = $(el);
    t = String(t);
    if (el && el.textContent !== t) el.textContent = t;
  }
  function setHTML(el, h) {
    if (typeof el === 'string') el = $(el);
    if (el && el._h !== h) { el.innerHTML = h; el._h = h; }
  }
  function show(el, on) {
    if (typeof el === 'string') el = $(el);
    if (el && el.hidden === !!on) el.hidden = !on;
  }
  const badge = (cls, text) => `<span class="badge ${cls}">${esc(text)}</span>`;
  const yesno = (b) => badge(b ? 'up' : 'down', b ? 'yes' : 'no');

  const nf = new Intl.NumberFormat('en-US');
  const fmtInt = (n) => (n == null || isNaN(n) ? '–' : nf.format(Math.round(n)));
  function fmtMS(ms) {
    if (ms == null || isNaN(ms)) return '–';
    return (ms < 10 ? ms.toFixed(2) : ms < 100 ? ms.toFixed(1) : Math.round(ms)) + ' ms';
  }
  function fmtBytes(b) {
    if (b == null || isNaN(b)) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (Math.abs(b) >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i === 0 ? b : b.toFixed(b < 10 ? 2 : 1)) + ' ' + u[i];
  }
  function fmtCompact(n) {
    const a = Math.abs(n);
    if (a >= 1e9) return +(n / 1e9).toFixed(1) + 'G';
    if (a >= 1e6) return +(n / 1e6).toFixed(1) + 'M';
    if (a >= 1e3) return +(n / 1e3).toFixed(1) + 'k';
    return +n.toFixed(2) + '';
  }
  const pad = (n) => String(n).padStart(2, '0');
  function fmtDur(sec) {
    sec = Math.max(0, Math.floor(sec));
    const d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24, m = Math.floor(sec / 60) % 60, s = sec % 60;
    if (d) return `${d}d${h}h`;
    if (h) return `${h}h${pad(m)}m`;
    if (m) return `${m}m${pad(s)}s`;
    return `${s}s`;
  }
  function fmtAgo(t, now) {
    if (t == null) return 'never';
    const s = Math.max(0, (now - t) / 1000);
    if (s < 10) return s.toFixed(1) + ' s ago';
    if (s < 60) return Math.round(s) + ' s ago';
    return fmtDur(s) + ' ago';
  }
  // Go's zero time.Time ("0001-01-01T00:00:00Z") means "never".
  function ts(s) {
    const t = Date.parse(s);
    return isNaN(t) || t <= 0 ? null : t;
  }
  function clock(t, secs = true) {
    const d = new Date(t);
    return pad(d.getHours()) + ':' + pad(d.getMinutes()) + (secs ? ':' + pad(d.getSeconds()) : '');
  }
  function stamp(t) {
    const d = new Date(t), today = new Date();
    const day = d.toDateString() === today.toDateString() ? '' :
      d.toLocaleDateString('en-US', { month: 'short', day: 'numeric' }) + ' ';
    return day + clock(t);
  }
  function pct(n, d) {
    if (!d) return '–';
    const p = (100 * n) / d;
    return p === 0 ? '0%' : p < 0.01 ? '<0.01%' : p.toFixed(p < 10 ? 2 : 1) + '%';
  }
  const rangeText = (r) => (r[0] === r[1] ? String(r[0]) : `${r[0]}-${r[1]}`);
  function safe(name, fn) {
    try { fn(); } catch (e) { console.error('slotway: rendering ' + name + ' failed:', e); }
  }

  // Keeps a tbody's rows in sync with items, keyed by attr: rows are reused,
  // cells rewritten only when their HTML changed, so nothing flickers.
  // cellsOf(item) returns [class, html, title?] per cell.
  function syncRows(tbody, attr, items, keyOf, cellsOf, rowClass, emptyMsg) {
    const old = new Map();
    for (const tr of Array.from(tbody.rows)) old.set(tr.getAttribute(attr) || '', tr);
    let prev = null;
    const place = (tr) => {
      const want = prev ? prev.nextSibling : tbody.firstChild;
      if (want !== tr) tbody.insertBefore(tr, want);
      prev = tr;
    };
    for (const it of items) {
      const k = keyOf(it);
      let tr = old.get(k);
      if (tr) old.delete(k); else { tr = document.createElement('tr'); tr.setAttribute(attr, k); }
      const cells = cellsOf(it);
      while (tr.cells.length > cells.length) tr.deleteCell(-1);
      cells.forEach((c, i) => {
        const td = tr.cells[i] || tr.insertCell();
        if (td.className !== (c[0] || '')) td.className = c[0] || '';
        setHTML(td, c[1]);
        if (td.title !== (c[2] || '')) td.title = c[2] || '';
      });
      const cls = rowClass ? rowClass(it) : '';
      if (tr.className !== cls) tr.className = cls;
      place(tr);
    }
    if (!items.length) {
      let tr = old.get('');
      if (tr) old.delete(''); else {
        tr = document.createElement('tr');
        tr.className = 'empty-row';
        tr.innerHTML = `<td colspan="99">${esc(emptyMsg || 'Nothing yet')}</td>`;
      }
      place(tr);
    }
    old.forEach((tr) => tr.remove());
  }

  // ---------- colours ----------
  function mastersOf(st) {
    const set = new Set();
    for (const n of st.cluster.nodes || []) if (n.role === 'master') set.add(n.addr);
    for (const r of st.cluster.slots || []) if (r.owner) set.add(r.owner);
    for (const p of (st.series && st.series.points) || []) {
      Object.keys(p.memory_by_master || {}).forEach((a) => set.add(a));
      Object.keys(p.ops_by_master || {}).forEach((a) => set.add(a));
    }
    return Array.from(set).sort();
  }
  function assignColors(st) {
    const used = new Set(Object.values(colors));
    for (const a of mastersOf(st)) {
      if (colors[a]) continue;
      let c = PALETTE.find((p) => !used.has(p));
      if (!c) {
        let h = 2166136261;
        for (let i = 0; i < a.length; i++) h = Math.imul(h ^ a.charCodeAt(i), 16777619);
        c = `hsl(${(h >>> 0) % 360},55%,52%)`;
      }
      colors[a] = c;
      used.add(c);
    }
  }
  const colorOf = (addr) => colors[addr] || '#9aa4ae';
  const swatch = (addr) => `<i class="swatch" style="background:${colorOf(addr)}"></i>`;

  // ---------- sections ----------
  function renderHeader(st, now) {
    const i = st.instance;
    setText('instance-name', i.name || '–');
    setText('version', i.version || '–');
    setText('proxy-addr', i.proxy_addr || '–');
    setText('uptime', fmtDur(i.uptime_seconds || 0));
    setHTML('ready', yesno(i.ready));
    setText('last-update', clock(now));
  }

  function renderAlerts(st, now) {
    const a = [], c = st.cluster, g = st.group;
    if (!st.instance.ready) a.push('Not ready: no slot map yet or no master reachable.');
    if (c.slots_served < SLOTS) a.push(`${fmtInt(SLOTS - c.slots_served)} slots not served (${fmtInt(c.slots_served)} / 16384).`);
    if (g && !g.quorum) a.push('HA quorum lost' + (g.reason ? ': ' + g.reason : '.'));
    if (g && !g.holder) a.push('Nobody holds the VIP.');
    for (const n of c.nodes || []) {
      if (n.status !== 'UP') a.push(`${n.role} ${n.addr} is ${n.status}` + (ts(n.since) ? ` for ${fmtDur((now - ts(n.since)) / 1000)}` : '') + (n.last_error ? ': ' + n.last_error : '.'));
      else if (n.role !== 'master' && n.repl_link === 'down') a.push(`replica ${n.addr}: replication link down.`);
    }
    const nodes = c.nodes || [];
    const html = a.length ? a.map((t) => `<li class="alert">${esc(t)}</li>`).join('') :
      `<li class="ok">All good: ${nodes.length} / ${nodes.length} nodes UP, all 16384 slots served${g ? ', quorum ok' : ''}.</li>`;
    setHTML('alerts', html);
    $('alerts').className = 'alerts wide ' + (a.length ? 'bad' : 'good');
  }

  function roleBadges(role) {
    return String(role || '–').split('+').map((r) => {
      const cls = /holder/.test(r) ? 'holder' : /leader/.test(r) ? 'leader' : /draining/.test(r) ? 'warn' : 'grey';
      return badge(cls, r);
    }).join('<span class="sep">+</span>');
  }

  function renderGroup(g, now) {
    show('group-single', !g);
    show('group-body', !!g);
    if (!g) return;
    setHTML('group-holder', g.holder ? badge('holder', g.holder) : badge('down', 'none'));
    setText('group-leader', g.leader || 'none');
    setText('group-term', g.term);
    setHTML('group-role', `${esc(g.self)} ${badge(g.role === 'holder' ? 'holder' : g.role === 'draining' ? 'warn' : 'grey', g.role)}`);
    setHTML('group-quorum', g.quorum ? badge('up', 'ok') : badge('down', 'lost'));
    setText('group-reason', g.reason || '–');
    syncRows($('group-members').tBodies[0], 'data-member', g.members || [], (m) => m.name, (m) => [
      ['name', esc(m.name) + (m.name === g.self ? ' <span class="tag">this instance</span>' : '')],
      ['role', roleBadges(m.role)],
      ['num', esc(m.term)],
      ['num', m.priority === m.effective_priority ? `${m.priority} / ${m.effective_priority}` :
        `${m.priority} / <b class="lowered">${m.effective_priority}</b>`, m.priority !== m.effective_priority ? 'effective priority lowered by health' : ''],
      ['alive', yesno(m.alive)],
      ['ago', esc(fmtAgo(ts(m.last_heard), now))],
      ['mono', esc(m.proxy_addr || '–')],
      ['mono', m.stats_addr ? `<a href="http://${esc(m.stats_addr)}/">${esc(m.stats_addr)}</a>` : '–'],
    ], (m) => 'member' + (m.alive ? '' : ' down') + (m.name === g.holder ? ' is-holder' : ''), 'No members known yet');
  }

  function orderNodes(nodes) {
    const first = (n) => (n.slot_ranges && n.slot_ranges.length ? n.slot_ranges[0][0] : 1e9);
    const byAddr = (a, b) => (a.addr < b.addr ? -1 : a.addr > b.addr ? 1 : 0);
    const masters = nodes.filter((n) => n.role === 'master').sort((a, b) => first(a) - first(b) || byAddr(a, b));
    const reps = new Map();
    for (const n of nodes) if (n.role !== 'master') {
      if (!reps.has(n.master_id)) reps.set(n.master_id, []);
      reps.get(n.master_id).push(n);
    }
    const out = [];
    for (const m of masters) {
      out.push(m);
      (reps.get(m.id) || []).sort(byAddr).forEach((r) => out.push(Object.assign({ _master: m.addr }, r)));
      reps.delete(m.id);
    }
    reps.forEach((list) => list.sort(byAddr).forEach((r) => out.push(r)));
    return out;
  }

  function memCell(n) {
    if (n.maxmemory > 0) {
      const pct = Math.min(100, (100 * n.used_memory) / n.maxmemory);
      const lvl = pct >= 90 ? 'crit' : pct >= 75 ? 'warn' : 'ok';
      return `<div class="mem"><span>${fmtBytes(n.used_memory)} / ${fmtBytes(n.maxmemory)} <span class="muted">${pct.toFixed(0)}%</span></span>` +
        `<span class="bar"><i class="${lvl}" style="width:${pct.toFixed(1)}%"></i></span></div>`;
    }
    if (!n.used_memory && n.status !== 'UP') return '<span class="muted">–</span>';
    return `<div class="mem"><span>${fmtBytes(n.used_memory)} <span class="muted">no limit</span></span></div>`;
  }

  // Seeds that left the cluster (reset, or of another cluster): one line
  // each, so the operator removes them from proxy.cluster.seeds.
  function renderSeedsLeft(left) {
    show('seeds-left', left.length > 0);
    setHTML('seeds-left', left.map((s) => `Seed <span class="mono">${esc(s.addr)}</span> has left the cluster (${esc(s.reason)}); ` +
      'the slot map is not read from it: remove it from proxy.cluster.seeds.').join('<br>'));
  }

  function renderCluster(c, now) {
    const nodes = c.nodes || [];
    renderSeedsLeft(c.seeds_left || []);
    setText('cluster-masters', c.masters);
    setHTML('cluster-slots', `${c.slots_served} <span class="muted">/ 16384</span>`);
    $('cluster-slots').className = 'v' + (c.slots_served < SLOTS ? ' bad' : '');
    const up = nodes.filter((n) => n.status === 'UP').length;
    setHTML('cluster-nodes-up', `${up} <span class="muted">/ ${nodes.length}</span>`);
    $('cluster-nodes-up').className = 'v' + (up < nodes.length ? ' bad' : '');
    setText('cluster-topology-age', fmtDur(c.topology_age_seconds || 0));
    syncRows($('nodes').tBodies[0], 'data-addr', orderNodes(nodes), (n) => n.addr, (n) => {
      const st = String(n.status || '?').toUpperCase(), since = ts(n.since);
      const ranges = n.slot_ranges || [];
      const isM = n.role === 'master';
      // A node whose last check failed: what it said before is not shown
      // as if it were current; Last check says how old it is.
      const okAt = ts(n.last_ok), age = okAt ? fmtDur((now - okAt) / 1000) : '';
      const staleTitle = n.stale ? (okAt ? `stale: the node last answered ${age} ago (${stamp(okAt)})` : 'stale: the node never answered a check') : '';
      const fresh = (h) => (n.stale ? '<span class="muted">–</span>' : h);
      let repl = '–';
      if (!isM) {
        repl = n.repl_link ? badge(n.repl_link === 'up' ? 'up' : 'down', n.repl_link) : '–';
        if (n.repl_lag_bytes) repl += ` <span class="muted">lag ${fmtBytes(n.repl_lag_bytes)}</span>`;
      }
      return [
        ['node', `<span class="stripe" style="background:${colorOf(isM ? n.addr : n._master)}"></span>` +
          (isM ? '' : '<span class="indent" aria-hidden="true">↳</span>') + `<span class="mono">${esc(n.addr)}</span>` +
          (n.last_error ? `<div class="node-err">${esc(n.last_error)}</div>` : ''), (n.id ? 'node id ' + n.id : '') + (n.last_error ? '\nlast error: ' + n.last_error : '')],
        ['role', esc(n.role)],
        ['status', badge(st.toLowerCase(), st)],
        ['since', since ? 'for ' + fmtDur((now - since) / 1000) : '', since ? 'since ' + new Date(since).toLocaleString() : ''],
        ['slots', n.slot_count ? `<b>${fmtInt(n.slot_count)}</b> <span class="ranges">${esc(ranges.slice(0, 3).map(rangeText).join(', '))}` +
          (ranges.length > 3 ? ` +${ranges.length - 3} more` : '') + '</span>' : '<span class="muted">–</span>',
          ranges.length > 3 ? ranges.slice(0, 200).map(rangeText).join(', ') : ''],
        ['num', fresh(fmtInt(n.keys)), staleTitle],
        ['memory', fresh(memCell(n)), staleTitle],
        ['num', fresh(fmtInt(n.connected_clients)), staleTitle],
        ['num', fresh(fmtInt(n.ops_per_sec)), staleTitle],
        ['num', fresh(n.hit_ratio == null || n.hit_ratio < 0 ? '–' : (100 * n.hit_ratio).toFixed(1) + '%'), staleTitle],
        ['repl', fresh(repl), staleTitle],
        ['num', fresh(n.status === 'UP' || n.ping_ms ? fmtMS(n.ping_ms) : '–'), staleTitle],
        n.stale ? ['ago', badge('warn', okAt ? 'stale ' + age : 'no answer yet'), staleTitle + `; the last check (${fmtAgo(ts(n.last_check), now)}) failed`] :
          ['ago', esc(fmtAgo(ts(n.last_check), now))],
      ];
    }, (n) => 'node ' + (n.role === 'master' ? 'master' : 'replica') + ' st-' + String(n.status).toLowerCase() + (n.stale ? ' stale' : ''), 'No nodes known yet');
  }

  function renderProxy(p) {
    setText('proxy-clients', fmtInt(p.clients));
    setText('proxy-cps', fmtInt(p.commands_per_sec));
    setText('proxy-p50', fmtMS(p.latency_p50_ms));
    setText('proxy-p99', fmtMS(p.latency_p99_ms));
    setText('proxy-commands', fmtInt(p.commands_total));
    setText('proxy-errors', fmtInt(p.errors_total));
    const budget = (p.retry_budget_seconds || 0).toFixed(0) + 's';
    setText('proxy-parked', p.parked_requests ? fmtInt(p.parked_requests) + ' · ' + (p.parked_longest_seconds || 0).toFixed(1) + 's of ' + budget : '0 · ' + budget + ' budget');
    const r = p.redirects || {};
    for (const k of ['moved', 'ask', 'tryagain', 'clusterdown']) setText('redirect-' + k, fmtInt(r[k] || 0));
    const fams = (p.families || []).slice().sort((a, b) => b.calls - a.calls || (a.family < b.family ? -1 : 1));
    syncRows($('families').tBodies[0], 'data-family', fams, (f) => f.family, (f) => [
      ['', esc(f.family)],
      ['num', fmtInt(f.calls)],
      ['num' + (f.errors ? ' bad' : ''), fmtInt(f.errors)],
      ['num', pct(f.errors, f.calls)],
      ['num', fmtMS(f.latency_p50_ms)],
      ['num', fmtMS(f.latency_p99_ms)],
    ], null, 'No commands yet');
  }

  // ---------- slot map ----------
  // Slots a..b as rectangles of the 128x128 grid (x, y, w, h).
  function rangeRects(a, b) {
    const ra = Math.floor(a / GRID), rb = Math.floor(b / GRID), ca = a % GRID, cb = b % GRID;
    if (ra === rb) return [[ca, ra, cb - ca + 1, 1]];
    const out = [[ca, ra, GRID - ca, 1]];
    if (rb - ra > 1) out.push([0, ra + 1, GRID, rb - ra - 1]);
    out.push([0, rb, cb + 1, 1]);
    return out;
  }
  function renderSlotMap(slots) {
    const svg = $('slotmap-svg');
    const key = JSON.stringify(slots) + JSON.stringify(colors);
    if (svg._k === key) return;
    svg._k = key;
    svg._slots = slots;
    let h = '<defs><pattern id="hatch" patternUnits="userSpaceOnUse" width="1.5" height="1.5" patternTransform="rotate(45)">' +
      '<rect width="0.6" height="1.5" fill="rgba(0,0,0,.6)"/></pattern></defs>' +
      '<rect width="128" height="128" fill="#e3e6ea"><title>unassigned</title></rect>';
    const own = new Map(), marked = [];
    let free = SLOTS;
    for (const r of slots) {
      const n = r.end - r.start + 1, flag = r.migrating ? ' (migrating)' : r.importing ? ' (importing)' : '';
      free -= n;
      own.set(r.owner, (own.get(r.owner) || 0) + n);
      const title = `<title>${esc(rangeText([r.start, r.end]))} → ${esc(r.owner)} (${fmtInt(n)} slots)${flag}</title>`;
      for (const q of rangeRects(r.start, r.end)) {
        h += `<rect x="${q[0]}" y="${q[1]}" width="${q[2]}" height="${q[3]}" fill="${colorOf(r.owner)}">${title}</rect>`;
        if (flag) marked.push(`<rect class="moving" x="${q[0]}" y="${q[1]}" width="${q[2]}" height="${q[3]}" fill="url(#hatch)">${title}</rect>`);
      }
    }
    svg.innerHTML = h + marked.join('');
    let lg = Array.from(own.keys()).sort().map((a) => `<li data-owner="${esc(a)}">${swatch(a)}<span class="mono">${esc(a)}</span>` +
      `<span class="cnt">${fmtInt(own.get(a))} slots · ${((100 * own.get(a)) / SLOTS).toFixed(1)}%</span></li>`).join('');
    if (marked.length) lg += '<li class="moving-key"><i class="swatch hatch"></i>migrating / importing</li>';
    if (free > 0) lg += `<li class="unassigned"><i class="swatch" style="background:#e3e6ea"></i>unassigned<span class="cnt">${fmtInt(free)} slots</span></li>`;
    setHTML('slot-legend', lg);
  }
  function slotHover(ev) {
    const svg = $('slotmap-svg'), b = svg.getBoundingClientRect();
    const x = Math.floor(((ev.clientX - b.left) / b.width) * GRID), y = Math.floor(((ev.clientY - b.top) / b.height) * GRID);
    if (x < 0 || y < 0 || x >= GRID || y >= GRID) return;
    const slot = y * GRID + x, r = (svg._slots || []).find((s) => slot >= s.start && slot <= s.end);
    setHTML('slot-hover', r ? `Slot <b>${slot}</b> → ${swatch(r.owner)}<span class="mono">${esc(r.owner)}</span><br>range ${rangeText([r.start, r.end])}` +
      (r.migrating ? ' · <b>migrating</b>' : '') + (r.importing ? ' · <b>importing</b>' : '') : `Slot <b>${slot}</b>: unassigned`);
  }

  // ---------- charts ----------
  function niceStep(max, n, bytes) {
    if (bytes && max >= 1024) {
      const unit = Math.pow(1024, Math.min(4, Math.floor(Math.log(max) / Math.log(1024))));
      return niceStep(max / unit, n) * unit;
    }
    const raw = max / n, p = Math.pow(10, Math.floor(Math.log10(raw))), f = raw / p;
    return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 2.5 ? 2.5 : f <= 5 ? 5 : 10) * p;
  }
  // series: [{name, color, vals}] aligned with times (ms). fmt formats a y value.
  function drawChart(svg, times, series, fmt, t1, interval, bytes) {
    const W = Math.max(240, Math.round(svg.clientWidth || svg.parentNode.clientWidth || 600)), H = 170;
    const L = 54, R = 12, T = 10, B = 24, t0 = t1 - WINDOW_MS;
    const x = (t) => L + ((t - t0) / WINDOW_MS) * (W - L - R);
    let max = 0;
    series.forEach((s) => s.vals.forEach((v, i) => { if (times[i] >= t0 && v > max) max = v; }));
    const step = max > 0 ? niceStep(max, 4, bytes) : 1, top = max > 0 ? Math.ceil(max / step) * step : 4;
    const y = (v) => T + (1 - v / top) * (H - T - B);
    let h = '';
    for (let v = 0; v <= top + step / 2; v += step) {
      h += `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}"/><text class="ylab" x="${L - 6}" y="${y(v) + 4}">${esc(max > 0 || v === 0 ? fmt(v) : '')}</text>`;
    }
    const tick = 5 * 60000;
    for (let t = Math.ceil(t0 / tick) * tick; t <= t1; t += tick) {
      h += `<line class="grid" x1="${x(t)}" x2="${x(t)}" y1="${T}" y2="${H - B}"/><text class="xlab" x="${x(t)}" y="${H - 6}">${clock(t, false)}</text>`;
    }
    h += `<line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>`;
    const gap = Math.max(3 * interval * 1000, 15000);
    let drawn = false;
    for (const s of series) {
      let d = '', prev = null, dots = '', seg = [];
      const end = () => { if (seg.length === 1) dots += `<circle cx="${seg[0][0]}" cy="${seg[0][1]}" r="2.5" fill="${s.color}"/>`; seg = []; };
      s.vals.forEach((v, i) => {
        const t = times[i];
        if (t < t0 || t > t1 || v == null) { prev = null; end(); return; }
        if (prev == null || t - prev > gap) end();
        const p = [x(t).toFixed(1), y(v).toFixed(1)];
        d += (seg.length ? 'L' : 'M') + p[0] + ' ' + p[1];
        seg.push(p);
        prev = t;
      });
      end();
      drawn = drawn || !!d;
      if (d) h += `<path class="line" d="${d}" stroke="${s.color}"><title>${esc(s.name)}</title></path>` + dots;
    }
    // Points without values: e.g. no command, so no p99, in 15 minutes.
    if (!drawn) h += `<text class="nodata" x="${(L + W - R) / 2}" y="${H / 2}">${times.some((t) => t >= t0) ? 'No values in these 15 minutes' : 'No data yet'}</text>`;
    svg.setAttribute('viewBox', `0 0 ${W} ${H}`);
    svg.setAttribute('height', H);
    setHTML(svg, h + '<g class="hover"></g>');
    svg._c = { times, series, fmt, x, y, L, R, W, T, H, B, t0 };
    if (svg._hx != null) chartHover(svg, svg._hx);
  }
  function chartHover(svg, px) {
    const c = svg._c, g = svg.querySelector('g.hover'), out = svg.parentNode.querySelector('.readout');
    svg._hx = px;
    if (!c || !g) return;
    let best = -1, bd = Infinity;
    c.times.forEach((t, i) => { const d = Math.abs(c.x(t) - px); if (t >= c.t0 && d < bd) { bd = d; best = i; } });
    if (px == null || best < 0 || bd > 30) { g.innerHTML = ''; setText(out, ''); return; }
    const X = c.x(c.times[best]);
    let h = `<line x1="${X}" x2="${X}" y1="${c.T}" y2="${c.H - c.B}"/>`;
    const parts = [];
    for (const s of c.series) {
      const v = s.vals[best];
      if (v == null) continue;
      h += `<circle cx="${X}" cy="${c.y(v)}" r="3.5" fill="${s.color}"/>`;
      parts.push((c.series.length > 1 ? s.name + ' ' : '') + c.fmt(v));
    }
    g.innerHTML = h;
    setText(out, clock(c.times[best]) + ' · ' + parts.join(' · '));
  }
  function perMaster(points, field) {
    const keys = new Set();
    points.forEach((p) => Object.keys(p[field] || {}).forEach((k) => keys.add(k)));
    return Array.from(keys).sort().map((a) => ({ name: a, color: colorOf(a), vals: points.map((p) => (p[field] || {})[a]) }));
  }
  function legend(id, series) {
    setHTML(id, series.map((s) => `<li>${swatch(s.name)}<span class="mono">${esc(s.name)}</span></li>`).join(''));
  }
  function renderCharts(ser, now) {
    const pts = (ser && ser.points) || [], iv = (ser && ser.interval_seconds) || 1;
    const times = pts.map((p) => ts(p.t));
    const t1 = Math.max(now, times.length ? times[times.length - 1] : 0);
    drawChart($('chart-ops'), times, [{ name: 'commands/s', color: '#0969da', vals: pts.map((p) => p.ops_per_sec) }], fmtCompact, t1, iv);
    drawChart($('chart-p99'), times, [{ name: 'p99', color: '#bf3989', vals: pts.map((p) => p.latency_p99_ms) }],
      (v) => +v.toFixed(v < 10 ? 2 : 0) + ' ms', t1, iv);
    const mem = perMaster(pts, 'memory_by_master'), ops = perMaster(pts, 'ops_by_master');
    drawChart($('chart-mem'), times, mem, (v) => fmtBytes(v).replace(/(\.\d*?)0+ /, '$1 ').replace('. ', ' '), t1, iv, true);
    drawChart($('chart-ops-master'), times, ops, fmtCompact, t1, iv);
    legend('chart-mem-legend', mem);
    legend('chart-ops-master-legend', ops);
  }

  // ---------- scaler ----------
  // The Scaling panel and the scaler's buttons live in scaler.js, loaded
  // before this file; null if it failed to load (the panel then stays empty).
  let scaler = null;
  function initScaler() {
    if (typeof window.SlotwayScaler !== 'function') return;
    safe('scaler init', () => {
      const sc = window.SlotwayScaler({
        $, esc, setText, setHTML, show, badge, yesno, fmtInt, fmtCompact, fmtDur, fmtAgo, ts, stamp, clock, niceStep, syncRows, colorOf,
        adminPost, last: () => last,
      });
      sc.init();
      scaler = sc;
    });
  }

  // ---------- admin ----------
  function getToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }
  function setToken(t) {
    try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* storage disabled */ }
  }
  function renderAdmin() {
    const tok = getToken(), st = last || {}, g = st.group;
    show('admin-actions', !!tok);
    setText('token-state', tok ? 'A token is set for this tab (sessionStorage). "Forget" removes it.' :
      'Kept in this tab only (sessionStorage), sent as "Authorization: Bearer …".');
    const hb = $('btn-handover');
    if (!hb.dataset.busy) hb.disabled = !g;
    let hint = '';
    if (!g) hint = 'No HA group: nothing to hand over.';
    else if (g.holder !== g.self) {
      const m = (g.members || []).find((x) => x.name === g.holder);
      hint = `This instance (${esc(g.self)}) does not hold the VIP, so a handover here answers 409. ` + (!g.holder ? 'Nobody holds it right now.' :
        `The holder is ${esc(g.holder)}` + (m && m.stats_addr ? `: <a href="http://${esc(m.stats_addr)}/">open its page</a>.` : '.'));
    } else hint = 'Hand over moves the VIP to the next best member without stopping this instance.';
    if (scaler) hint += scaler.renderAdmin(st);
    setHTML('admin-hint', hint);
  }
  // POSTs to an admin endpoint with the token; json, when given, is sent
  // as the JSON body. A success refreshes the status at once.
  async function adminPost(btn, path, json) {
    const out = $('admin-result');
    const req = `POST ${path}` + (json === undefined ? '' : ' ' + JSON.stringify(json));
    const headers = { Authorization: 'Bearer ' + getToken() };
    if (json !== undefined) headers['Content-Type'] = 'application/json';
    btn.dataset.busy = '1';
    btn.disabled = true;
    out.hidden = false;
    out.className = 'result';
    out.textContent = req + ' …';
    try {
      const res = await fetch(path, { method: 'POST', cache: 'no-store', headers, body: json === undefined ? undefined : JSON.stringify(json) });
      const body = (await res.text()).trim();
      const hint = res.status === 401 || res.status === 403 ? '\n(check the admin token)' : '';
      out.className = 'result ' + (res.ok ? 'ok' : 'err');
      out.textContent = `${clock(Date.now())}  ${req}\nHTTP ${res.status} ${res.statusText}\n${body}${hint}`;
      if (res.ok) poll();
    } catch (e) {
      out.className = 'result err';
      out.textContent = `${clock(Date.now())}  ${req}\nrequest failed: ${e.message}`;
    } finally {
      delete btn.dataset.busy;
      renderAdmin();
    }
  }
  function initAdmin() {
    const input = $('admin-token');
    input.value = getToken();
    $('token-form').addEventListener('submit', (e) => {
      e.preventDefault();
      setToken(input.value.trim());
      renderAdmin();
    });
    $('token-clear').addEventListener('click', () => {
      setToken('');
      input.value = '';
      show('admin-result', false);
      renderAdmin();
    });
    const hb = $('btn-handover');
    let armed = 0;
    hb.addEventListener('click', () => {
      // Two clicks: the first arms the button for 5 s, the second posts.
      if (!armed) {
        hb.textContent = 'Click again to hand over';
        hb.classList.add('armed');
        armed = setTimeout(() => { armed = 0; hb.textContent = 'Hand over VIP'; hb.classList.remove('armed'); }, 5000);
        return;
      }
      clearTimeout(armed);
      armed = 0;
      hb.textContent = 'Hand over VIP';
      hb.classList.remove('armed');
      adminPost(hb, '/api/v1/ha/handover');
    });
  }

  // ---------- polling ----------
  function render(st) {
    if (!st || !st.instance || !st.cluster) throw new Error('unexpected status JSON');
    st.proxy = st.proxy || {};
    last = st;
    const now = ts(st.instance.now) || Date.now();
    assignColors(st);
    safe('header', () => renderHeader(st, now));
    safe('alerts', () => renderAlerts(st, now));
    safe('group', () => renderGroup(st.group, now));
    safe('cluster', () => renderCluster(st.cluster, now));
    safe('proxy', () => renderProxy(st.proxy));
    safe('slot map', () => renderSlotMap(st.cluster.slots || []));
    safe('charts', () => renderCharts(st.series, now));
    safe('scaler', () => scaler && scaler.render(st.scaler, now));
    safe('admin', renderAdmin);
  }
  function setStale(err) {
    const b = $('stale');
    if (err) {
      setText(b, 'stale since ' + clock(lastOK));
      b.title = 'Polling /api/v1/status failed: ' + (err.name === 'AbortError' ? 'timed out' : err.message);
    }
    show(b, !!err);
    document.body.classList.toggle('is-stale', !!err);
  }
  async function poll() {
    clearTimeout(timer);
    if (document.hidden) { schedule(); return; }
    const ctl = new AbortController(), to = setTimeout(() => ctl.abort(), TIMEOUT_MS);
    try {
      const res = await fetch('/api/v1/status', { cache: 'no-store', signal: ctl.signal, headers: { Accept: 'application/json' } });
      if (!res.ok) throw new Error(`HTTP ${res.status} ${res.statusText}`);
      const st = await res.json();
      render(st);
      lastOK = Date.now();
      setStale(null);
    } catch (e) {
      setStale(e);
    } finally {
      clearTimeout(to);
      schedule();
    }
  }
  function schedule() { clearTimeout(timer); timer = setTimeout(poll, POLL_MS); }

  function init() {
    initScaler();
    initAdmin();
    const svg = $('slotmap-svg');
    svg.addEventListener('mousemove', slotHover);
    svg.addEventListener('mouseleave', () => setText('slot-hover', "Hover the map to see a slot's owner."));
    document.querySelectorAll('.chart svg').forEach((c) => {
      c.addEventListener('mousemove', (e) => {
        const b = c.getBoundingClientRect();
        chartHover(c, ((e.clientX - b.left) / b.width) * (c._c ? c._c.W : b.width));
      });
      c.addEventListener('mouseleave', () => chartHover(c, null));
    });
    let rz = 0;
    window.addEventListener('resize', () => {
      cancelAnimationFrame(rz);
      rz = requestAnimationFrame(() => {
        if (!last) return;
        const now = ts(last.instance.now) || Date.now();
        safe('charts', () => renderCharts(last.series, now));
        safe('scaler', () => scaler && scaler.render(last.scaler, now));
      });
    });
    document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });
    const init = window.SLOTWAY_INITIAL;
    if (init && init.instance) {
      try { render(init); } catch (e) { console.error('slotway: initial render failed:', e); }
      schedule();
    } else {
      poll();
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init); else init();
})();
