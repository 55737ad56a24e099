/* Slotway stats page: the Scaling panel (scaler.events and the autoscaler's
 * scaler.auto, schema in docs/api.md) and the scaler's admin buttons.
 * Loaded before app.js, which owns polling and calls
 * SlotwayScaler(ui) once with its helpers (esc, setHTML, syncRows, ...). */
window.SlotwayScaler = function (ui) {
  'use strict';

  const { $, esc, setText, setHTML, show, badge, yesno, fmtInt, fmtCompact, fmtDur, fmtAgo, ts, stamp, clock, niceStep, syncRows, colorOf } = ui;

  const ACTION_COLORS = { scale_out: '#1a7f37', scale_in: '#8250df', rebalance: '#bc4c00', vertical: '#0969da' };
  const actionColor = (a) => ACTION_COLORS[a] || '#6e7781';
  const actionText = (a) => String(a || '').replace(/_/g, ' ');
  // Tick spacings for the timeline's time axis, smallest first.
  const TICKS = [60e3, 5 * 60e3, 15 * 60e3, 30 * 60e3, 3600e3, 2 * 3600e3, 3 * 3600e3, 6 * 3600e3, 12 * 3600e3, 24 * 3600e3];

  // Durations in the JSON are nanoseconds (Go's time.Duration).
  const fmtLeft = (ns) => (ns > 0 ? fmtDur(Math.ceil(ns / 1e9)) : '–');
  const isPct = (name) => /_pct$/.test(name);
  function fmtSignal(name, v) {
    if (v == null || isNaN(v)) return '–';
    return isPct(name) ? +v.toFixed(v < 10 ? 2 : 1) + '%' : fmtInt(v);
  }
  function fmtSignalShort(name, v) {
    if (v == null || isNaN(v)) return '–';
    return isPct(name) ? +v.toFixed(v < 10 ? 1 : 0) + '%' : fmtCompact(v);
  }
  // ok, warn (within 10 % under the threshold) or crit (above it).
  function level(v, thr) {
    if (!(thr > 0)) return 'ok';
    return v > thr ? 'crit' : v >= 0.9 * thr ? 'warn' : 'ok';
  }

  // ---------- events (every scaler) ----------
  function renderEvents(s) {
    const ev = (s.events || []).slice().sort((a, b) => (ts(b.t) || 0) - (ts(a.t) || 0));
    show('scaler-empty', !ev.length);
    show('scaler-events', ev.length > 0);
    setHTML('scaler-events', ev.map((e) => `<li data-kind="${esc(e.kind)}"><time datetime="${esc(e.t)}">${esc(ts(e.t) ? stamp(ts(e.t)) : '–')}</time>` +
      `<div class="ev-body">${badge('kind', e.kind || 'event')} <span class="muted">term ${esc(e.term)} · by ${esc(e.actor || '–')}</span>` +
      `<p class="reason">${esc(e.reason || '')}</p></div></li>`).join(''));
  }

  // ---------- the autoscaler ----------
  // The group's leader evaluates; before it has published an evaluation
  // the status names none, so the group's view fills in.
  function leaderOf(a) {
    if (a.leader) return a.leader;
    const st = ui.last(), g = st && st.group;
    return (g && g.quorum && g.leader) || '';
  }
  function stateLine(a, now) {
    const parts = [a.enabled ? badge('up', 'enabled') : badge('grey', 'disabled')];
    if (a.paused) parts.push(badge('warn', 'paused'));
    if (a.dry_run) parts.push(badge('warn', 'dry run'));
    if (!a.enabled) {
      // Nothing evaluates, so there is no leader or evaluation to show.
      parts.push('<span class="muted">scaler.enabled is false: no automatic scaling; the scaling operations (Rebalance, <code>slotway cluster</code>) still work</span>');
      return parts.join(' ');
    }
    parts.push(`<span>leader <b>${esc(leaderOf(a) || 'none')}</b></span>`);
    const ev = ts(a.evaluated);
    parts.push(`<span>evaluated <b>${esc(ev ? fmtAgo(ev, now) : 'never')}</b>` +
      (a.interval_ns > 0 ? ` <span class="muted">every ${esc(a.interval_ns < 1e9 ? Math.round(a.interval_ns / 1e6) + 'ms' : fmtDur(a.interval_ns / 1e9))}</span>` : '') + '</span>');
    let h = parts.join(' ');
    if (a.hold) h += `<span class="auto-hold">${badge('down', 'hold')} ${esc(a.hold)}</span>`;
    return h;
  }

  function averageCell(sig) {
    if (sig.off) return `<span class="muted">off: ${esc(sig.off)}</span>`;
    const thr = sig.threshold, avg = sig.average || 0;
    if (!(thr > 0)) return esc(fmtSignal(sig.name, avg)) + ' <span class="muted">no threshold</span>';
    // The bar spans 125 % of the threshold (more when above); a tick marks it.
    const scale = Math.max(thr * 1.25, avg), lvl = level(avg, thr);
    return `<div class="sig"><span>${esc(fmtSignal(sig.name, avg))} <span class="muted">/ ${esc(fmtSignal(sig.name, thr))}</span></span>` +
      `<span class="bar sig-bar"><i class="${lvl}" style="width:${((100 * avg) / scale).toFixed(1)}%"></i>` +
      `<b class="thr" style="left:${((100 * thr) / scale).toFixed(1)}%"></b></span></div>`;
  }

  function perMasterCell(sig) {
    const pm = sig.per_master || {}, addrs = Object.keys(pm).sort();
    if (!addrs.length) return ['muted', '–', ''];
    const html = addrs.map((a) => {
      const bad = !sig.off && sig.threshold > 0 && pm[a] > sig.threshold;
      return `<span class="pm${bad ? ' bad' : ''}" title="${esc(a)}: ${esc(fmtSignal(sig.name, pm[a]))}">` +
        `<i class="swatch" style="background:${colorOf(a)}"></i>${esc(fmtSignalShort(sig.name, pm[a]))}</span>`;
    }).join('');
    return ['per-master', html, addrs.map((a) => `${a}: ${fmtSignal(sig.name, pm[a])}`).join('\n')];
  }

  function renderSignals(sigs) {
    syncRows($('scaler-signals').tBodies[0], 'data-signal', sigs, (g) => g.name, (g) => [
      ['name mono', esc(g.name)],
      ['average', averageCell(g), g.off ? '' : `average over the masters; threshold ${fmtSignal(g.name, g.threshold)}`],
      ['num', g.off ? '<span class="muted">–</span>' : esc(fmtSignal(g.name, g.peak))],
      perMasterCell(g),
    ], (g) => 'signal' + (g.off ? ' off' : ' sig-' + level(g.average || 0, g.threshold)), 'No signals measured yet');
  }

  function renderCycles(c) {
    c = c || {};
    const one = (label, n, of) => `<span class="${n > 0 ? 'cyc-on' : ''}">${label} ${fmtInt(n || 0)}/${fmtInt(of || 0)}</span>`;
    setHTML('scaler-cycles', [one('up', c.up, c.up_needed), one('down', c.down, c.down_needed),
      one('imbalance', c.imbalanced, c.imbalanced_needed)].join('<span class="sep">·</span>'));
  }

  function renderDecision(a) {
    const d = a.decision || 'none';
    let h = d === 'none' ? badge('grey', 'none') : `<span class="badge" style="background:${actionColor(d)};color:#fff">${esc(actionText(d))}</span>`;
    if (a.desired_masters && a.desired_masters !== a.masters) h += ` <b>${fmtInt(a.masters)} → ${fmtInt(a.desired_masters)} masters</b>`;
    else h += ` <span class="muted">${fmtInt(a.masters)} masters</span>`;
    if (a.reason) h += `<span class="reason">${esc(a.reason)}</span>`;
    setHTML('scaler-decision', h);
  }

  // A step chart of the master count with a marker per action: filled for
  // ok, hollow for dry_run, ringed in red for failed.
  function drawTimeline(box, points, now) {
    const W = Math.max(240, Math.round(box.clientWidth || 600)), H = 150, L = 34, R = 12, T = 10, B = 24;
    const pts = (points || []).map((p) => Object.assign({ _t: ts(p.t) }, p)).filter((p) => p._t != null).sort((a, b) => a._t - b._t);
    let h = '';
    if (!pts.length) {
      h = `<text class="nodata" x="${(L + W - R) / 2}" y="${H / 2}">No data yet</text>`;
    } else {
      const t1 = Math.max(now, pts[pts.length - 1]._t), t0 = Math.min(pts[0]._t, t1 - 60e3);
      const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
      const ms = pts.map((p) => p.masters || 0), lo = Math.max(0, Math.min(...ms) - 1), hi = Math.max(...ms) + 1;
      const y = (v) => T + (1 - (v - lo) / (hi - lo)) * (H - T - B);
      const step = Math.max(1, Math.round(niceStep(hi - lo, 4)));
      for (let v = Math.ceil(lo / step) * step; v <= hi; v += step) {
        h += `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}"/><text class="ylab" x="${L - 6}" y="${y(v) + 4}">${v}</text>`;
      }
      const maxTicks = Math.max(2, Math.floor((W - L - R) / 70));
      const tick = TICKS.find((d) => (t1 - t0) / d <= maxTicks) || TICKS[TICKS.length - 1];
      for (let t = Math.ceil(t0 / tick) * tick; t <= t1; t += tick) {
        h += `<line class="grid" x1="${x(t)}" x2="${x(t)}" y1="${T}" y2="${H - B}"/><text class="xlab" x="${x(t)}" y="${H - 6}">${clock(t, false)}</text>`;
      }
      h += `<line class="axis" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>`;
      let d = `M${x(pts[0]._t).toFixed(1)} ${y(ms[0]).toFixed(1)}`;
      pts.forEach((p, i) => { if (i) d += `H${x(p._t).toFixed(1)}V${y(ms[i]).toFixed(1)}`; });
      d += `H${x(t1).toFixed(1)}`;
      h += `<path class="step" d="${d}"><title>masters</title></path>`;
      for (const p of pts) {
        if (!p.action) continue;
        const cx = x(p._t).toFixed(1), cy = y(p.masters || 0).toFixed(1), c = actionColor(p.action), res = p.result || 'ok';
        const title = `${stamp(p._t)} ${actionText(p.action)} → ${res} (${p.masters} masters)` + (p.reason ? '\n' + p.reason : '');
        const mark = res === 'dry_run' ? `<circle cx="${cx}" cy="${cy}" r="4.5" fill="#fff" stroke="${c}" stroke-width="2" stroke-dasharray="2 1.5"/>` :
          res === 'failed' ? `<circle cx="${cx}" cy="${cy}" r="6" fill="#fff" stroke="#c4202b" stroke-width="2"/><circle cx="${cx}" cy="${cy}" r="3" fill="${c}"/>` :
            `<circle cx="${cx}" cy="${cy}" r="4.5" fill="${c}" stroke="#fff" stroke-width="1.5"/>`;
        h += `<g class="mark" data-action="${esc(p.action)}" data-result="${esc(res)}"><title>${esc(title)}</title>` +
          `<circle cx="${cx}" cy="${cy}" r="11" fill="transparent"/>${mark}</g>`;
      }
    }
    setHTML(box, `<svg viewBox="0 0 ${W} ${H}" height="${H}" role="img" aria-label="Masters over time with the autoscaler's actions">${h}</svg>`);
    const acts = Array.from(new Set(pts.filter((p) => p.action).map((p) => p.action))).sort();
    const results = new Set(pts.filter((p) => p.action).map((p) => p.result || 'ok'));
    let lg = acts.map((a) => `<li><i class="swatch" style="background:${actionColor(a)};border-radius:50%"></i>${esc(actionText(a))}</li>`).join('');
    if (results.has('dry_run')) lg += '<li><i class="swatch mk-dry"></i>dry run</li>';
    if (results.has('failed')) lg += '<li><i class="swatch mk-failed"></i>failed</li>';
    setHTML('scaler-timeline-legend', lg);
  }

  function renderAuto(a, now) {
    show('scaler-auto', !!a);
    if (!a) return;
    setHTML('scaler-auto-state', stateLine(a, now));
    renderSignals(a.signals || []);
    renderCycles(a.cycles);
    setHTML('scaler-cooldown', `up <b>${esc(fmtLeft(a.up_cooldown_left_ns))}</b><span class="sep">·</span>down <b>${esc(fmtLeft(a.down_cooldown_left_ns))}</b>`);
    renderDecision(a);
    drawTimeline($('scaler-timeline'), a.timeline, now);
  }

  function render(s, now) {
    s = s || {};
    setText('scaler-state', s.state || '–');
    // "Enabled" is the autoscaler (scaler.enabled), as in the line below;
    // without one only the scaling operations exist.
    const a = s.auto, on = !!(s.enabled && a && a.enabled);
    setHTML('scaler-enabled', yesno(on) + (on && a.paused ? ' ' + badge('warn', 'paused') : '') +
      (!on && s.enabled ? ' <span class="muted">manual only</span>' : ''));
    $('scaler-enabled').title = !s.enabled ? 'No scaler: section' : on ? 'The autoscaler runs (scaler.enabled: true)' :
      'The autoscaler is off (scaler.enabled: false); the scaling operations work';
    renderAuto(s.auto, now);
    renderEvents(s);
  }

  // ---------- admin buttons ----------
  // Sets the scaler buttons for st and returns the hint's HTML.
  function renderAdmin(st) {
    const s = (st && st.scaler) || {}, a = s.auto;
    const set = (id, disabled, text, title) => {
      const b = $(id);
      if (b.dataset.busy) return;
      b.disabled = disabled;
      setText(b, text);
      if (b.title !== title) b.title = title;
    };
    set('btn-pause', !a, a && a.paused ? 'Resume scaler' : 'Pause scaler',
      !a ? 'Needs the autoscaler' : a.paused ? 'Let the autoscaler act again' : 'Stop the autoscaler from acting; it keeps evaluating');
    set('btn-dry-run', !a, a && a.dry_run ? 'Stop dry run' : 'Start dry run',
      !a ? 'Needs the autoscaler' : a.dry_run ? 'Let the autoscaler act for real' : 'The autoscaler decides and logs but does not act');
    $('btn-dry-run').setAttribute('aria-pressed', a && a.dry_run ? 'true' : 'false');
    set('btn-rebalance', !s.enabled, 'Rebalance', s.enabled ? 'Move slots so the masters hold even shares (runs on the leader)' : 'Needs a scaler: section');
    if (!s.enabled) return ' Scaling buttons need a <code>scaler:</code> section.';
    if (!a) return ' Pause and dry run need the autoscaler.';
    const ld = leaderOf(a);
    return ' Pause and dry run apply to the whole group' + (ld ? `; the leader ${esc(ld)} evaluates and runs Rebalance.` : '.');
  }

  function init() {
    const auto = () => { const st = ui.last(); return (st && st.scaler && st.scaler.auto) || {}; };
    $('btn-pause').addEventListener('click', (e) =>
      ui.adminPost(e.currentTarget, auto().paused ? '/api/v1/scaler/resume' : '/api/v1/scaler/pause'));
    $('btn-dry-run').addEventListener('click', (e) =>
      ui.adminPost(e.currentTarget, '/api/v1/scaler/dry_run', { on: !auto().dry_run }));
    $('btn-rebalance').addEventListener('click', (e) => ui.adminPost(e.currentTarget, '/api/v1/scaler/rebalance'));
  }

  return { render, renderAdmin, init };
};
