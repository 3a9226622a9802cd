// edgewarden fleet dashboard: a small single-page app over the collector's JSON API and its
// server-sent events. Plain browser JavaScript, no build step; uPlot (served by the collector from
// node_modules) draws the charts. Works offline: nothing is fetched from anywhere else.
(() => {
  const $ = (sel) => document.querySelector(sel);
  const state = {
    devices: new Map(), // id → DeviceView, as GET /api/devices returns it
    rows: new Map(), // id → <tr> currently in the table
    alerts: [],
    route: 'devices',
    deviceId: null,
    charts: [],
  };

  // ---- formatting ----
  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const short = (hex, n = 12) => (hex ? `${String(hex).slice(0, n)}…` : '');
  const LABEL = {
    compliant: 'compliant',
    degraded: 'degraded',
    non_compliant: 'non-compliant',
    unknown: 'unknown',
    pending: 'awaiting approval',
  };
  const CLASS = { compliant: 'ok', online: 'ok', degraded: 'warn', pending: 'warn', non_compliant: 'bad' };
  const pill = (key, text) => `<span class="pill ${CLASS[key] || 'dim'}">${esc(text ?? LABEL[key] ?? key)}</span>`;
  const complianceOf = (d) => (d.pending ? 'pending' : d.compliance || 'unknown');
  const tempOf = (h) => (h && typeof h.tempMilliC === 'number' ? `${(h.tempMilliC / 1000).toFixed(1)} °C` : '–');
  // Raspberry Pi get_throttled bits: 0-3 now (under-voltage, capped, throttled, soft limit), 16-19 since boot.
  const throttleOf = (h) => {
    const t = Number(h?.throttled ?? 0);
    if (!t) return '<span class="dim">none</span>';
    const now = t & 0xf ? '<span class="bad">now</span>' : '';
    const past = t & 0xf0000 ? '<span class="warn">since boot</span>' : '';
    return [now, past].filter(Boolean).join(' ');
  };
  const ago = (ms) => {
    if (!ms) return 'never';
    const s = Math.max(0, Math.round((Date.now() - Number(ms)) / 1000));
    if (s < 60) return `${s}s ago`;
    if (s < 3600) return `${Math.round(s / 60)}m ago`;
    if (s < 86400) return `${Math.round(s / 3600)}h ago`;
    return `${Math.round(s / 86400)}d ago`;
  };
  const when = (ms) => (ms ? new Date(Number(ms)).toLocaleString() : '–');

  async function getJson(url, init) {
    const res = await fetch(url, init);
    if (!res.ok) throw new Error(`${url}: HTTP ${res.status}`);
    return res.json();
  }

  // ---- devices table ----
  function matches(d) {
    const text = $('#filter-text').value.trim().toLowerCase();
    const online = $('#filter-online').value;
    const compliance = $('#filter-compliance').value;
    if (online && (online === 'online') !== Boolean(d.online)) return false;
    if (compliance && compliance !== complianceOf(d)) return false;
    if (!text) return true;
    const hay = `${d.id} ${d.fleet ?? ''} ${(d.models || []).map((m) => `${m.name} ${m.digest}`).join(' ')}`;
    return hay.toLowerCase().includes(text);
  }

  function rowHtml(d) {
    const c = complianceOf(d);
    const models = (d.models || [])
      .map(
        (m) =>
          `${esc(m.name || '(unnamed)')} <code title="${esc(m.digest)}">${esc(short(m.digest.replace(/^sha256:/, ''), 10))}</code>`,
      )
      .join('<br>');
    const flags = d.historyRewritten ? ' <span class="pill bad">history rewritten</span>' : '';
    return (
      `<td data-label="Device"><a href="#/device/${encodeURIComponent(d.id)}"><code>${esc(short(d.id, 16))}</code></a></td>` +
      `<td data-label="Fleet">${esc(d.fleet ?? '')}</td>` +
      `<td data-label="Status">${pill(d.online ? 'online' : 'offline', d.online ? 'online' : d.dead ? 'offline (left)' : 'offline')}${flags}</td>` +
      `<td data-label="Compliance" title="${esc((d.complianceReasons || []).join('\n'))}">${pill(c)}</td>` +
      `<td data-label="Models">${models || '<span class="dim">none</span>'}</td>` +
      `<td data-label="Last seen" data-ago="${esc(d.lastSeenMs ?? '')}">${esc(ago(d.lastSeenMs))}</td>` +
      `<td data-label="Temp">${esc(tempOf(d.health))}</td><td data-label="Throttling">${throttleOf(d.health)}</td>`
    );
  }

  const rowAttrs = (d) =>
    `data-id="${esc(d.id)}" data-seq="${esc(d.lastSeq ?? '')}" data-compliance="${esc(complianceOf(d))}" data-online="${Boolean(d.online)}"`;

  function makeRow(d) {
    const t = document.createElement('tbody');
    t.innerHTML = `<tr ${rowAttrs(d)}>${rowHtml(d)}</tr>`;
    return t.firstElementChild;
  }

  const sorted = () => [...state.devices.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));

  /** Rebuilds the table (first load, filters) in one parse; live updates replace single rows instead. */
  function renderDevices() {
    const body = $('#devices tbody');
    const shown = sorted().filter(matches);
    body.innerHTML = shown.map((d) => `<tr ${rowAttrs(d)}>${rowHtml(d)}</tr>`).join('');
    state.rows.clear();
    const trs = body.children;
    for (let i = 0; i < shown.length; i++) state.rows.set(shown[i].id, trs[i]);
    $('#empty').hidden = state.devices.size !== 0;
    renderSummary();
  }

  function renderSummary() {
    let on = 0;
    let ok = 0;
    let bad = 0;
    for (const d of state.devices.values()) {
      if (d.online) on++;
      const c = complianceOf(d);
      if (c === 'compliant') ok++;
      else if (c === 'non_compliant') bad++;
    }
    $('#summary').innerHTML =
      `<div><b id="count-devices">${state.devices.size}</b>devices</div><div><b class="ok">${on}</b>online</div>` +
      `<div><b class="ok">${ok}</b>compliant</div><div><b class="${bad ? 'bad' : 'dim'}">${bad}</b>non-compliant</div>` +
      `<div><b class="${state.alerts.length ? 'bad' : 'dim'}">${state.alerts.length}</b>alerts</div>`;
  }

  /** Applies one fresh DeviceView: the row is replaced in place (or added / removed by the filters). */
  function upsertDevice(d) {
    state.devices.set(d.id, d);
    if (state.route === 'device' && state.deviceId === d.id) scheduleDeviceRefresh();
    if (state.route !== 'devices') return;
    const old = state.rows.get(d.id);
    if (!matches(d)) {
      old?.remove();
      state.rows.delete(d.id);
    } else if (old) {
      const tr = makeRow(d);
      old.replaceWith(tr);
      state.rows.set(d.id, tr);
    } else {
      renderDevices();
      return;
    }
    $('#empty').hidden = true;
    renderSummary();
  }

  async function loadDevices() {
    const list = await getJson('/api/devices');
    state.devices = new Map(list.map((d) => [d.id, d]));
    if (state.route === 'devices') renderDevices();
  }

  // ---- one device ----
  function chartOpts(title, unit, width) {
    return {
      width,
      height: 180,
      legend: { show: false },
      scales: { x: { time: true } },
      axes: [
        { stroke: '#8b949e', grid: { stroke: '#21262d' } },
        { stroke: '#8b949e', grid: { stroke: '#21262d' }, label: unit, size: 56 },
      ],
      series: [{}, { stroke: '#58a6ff', width: 2, label: title, spanGaps: true }],
    };
  }

  /** The four series of a device page from its stored heartbeats (the API returns newest first). */
  function seriesOf(beats) {
    const asc = [...beats].sort((a, b) => a.timeMs - b.timeMs || a.seq - b.seq);
    const x = [];
    const rate = [];
    const p99 = [];
    const temp = [];
    const outbox = [];
    let prev;
    for (const b of asc) {
      const s = b.summary || {};
      const models = s.models || [];
      const n = models.reduce((acc, m) => acc + Number(m.inferences || 0), 0);
      x.push(b.timeMs / 1000);
      // Inference rate: the change of the cumulative counters between heartbeats (a restart resets them).
      const dt = prev ? (b.timeMs - prev.t) / 1000 : 0;
      rate.push(prev && dt > 0 && n >= prev.n ? (n - prev.n) / dt : null);
      p99.push(models.length ? Math.max(...models.map((m) => Number(m.p99Us || 0))) / 1000 : null);
      temp.push(typeof s.health?.tempMilliC === 'number' ? s.health.tempMilliC / 1000 : null);
      outbox.push(Number(s.outboxDepth ?? 0));
      prev = { t: b.timeMs, n };
    }
    return { x, rate, p99, temp, outbox };
  }

  const CHARTS = [
    ['rate', 'Inference rate', '/s'],
    ['p99', 'Latency p99', 'ms'],
    ['temp', 'Temperature', '°C'],
    ['outbox', 'Outbox depth', 'entries'],
  ];

  function deviceInfoHtml(d) {
    const reasons = d.complianceReasons || [];
    return (
      `<dt>Fleet</dt><dd>${esc(d.fleet ?? '')}</dd>` +
      `<dt>Status</dt><dd>${pill(d.online ? 'online' : 'offline')} ${d.historyRewritten ? '<span class="pill bad">history rewritten</span>' : ''}</dd>` +
      `<dt>Compliance</dt><dd><span id="device-compliance">${pill(complianceOf(d))}</span>${reasons.map((r) => `<div class="dim">${esc(r)}</div>`).join('')}</dd>` +
      `<dt>Last heartbeat</dt><dd>seq ${esc(d.lastSeq ?? '–')}, ${esc(ago(d.lastSeenMs))}</dd>` +
      `<dt>Board</dt><dd>${esc(d.board ? `${d.board.model} (${d.board.arch}, ${d.board.cpus} CPUs, ${d.board.os})` : '–')}</dd>` +
      `<dt>Temperature</dt><dd>${esc(tempOf(d.health))}</dd><dt>Throttling</dt><dd>${throttleOf(d.health)}</dd>` +
      `<dt>Audit log</dt><dd>${d.checkpoint ? `${esc(d.checkpoint.treeSize)} records, root <code>${esc(short(d.checkpoint.rootHash, 16))}</code>` : '–'}</dd>` +
      `<dt>Outbox</dt><dd>${esc(d.outboxDepth ?? '–')} waiting, ${esc(d.dropped ?? 0)} dropped</dd>` +
      `<dt>SDK</dt><dd>${esc(d.sdkVersion ?? '–')}</dd>` +
      `<dt>Models</dt><dd>${
        (d.models || [])
          .map(
            (m) =>
              `${esc(m.name)} <code>${esc(m.digest)}</code><div class="dim">${esc(m.inferences)} inferences, ${esc(m.blocked)} blocked, ` +
              `${esc(m.errors)} errors, p50 ${(m.p50Us / 1000).toFixed(2)} ms, p99 ${(m.p99Us / 1000).toFixed(2)} ms on ${esc(m.executionProvider)}</div>`,
          )
          .join('') || 'none'
      }</dd>`
    );
  }

  async function renderDevice(id) {
    const view = $('#device-view');
    for (const c of state.charts) c.chart.destroy();
    state.charts = [];
    let d;
    let beats;
    try {
      [d, beats] = await Promise.all([
        getJson(`/api/devices/${encodeURIComponent(id)}`),
        getJson(`/api/devices/${encodeURIComponent(id)}/heartbeats?limit=500`),
      ]);
    } catch {
      view.innerHTML = `<p><a href="#/">← all devices</a></p><h1>No device <code>${esc(id)}</code></h1>`;
      return;
    }
    if (state.deviceId !== id) return; // navigated away meanwhile
    view.innerHTML =
      `<p><a href="#/">← all devices</a></p><h1>Device <code class="device-id">${esc(d.id)}</code></h1>` +
      (d.pending
        ? '<p class="approve">This device enrolled itself on first use and waits for approval: its heartbeats are not accepted yet. ' +
          '<button id="approve" type="button">Approve this device</button></p>'
        : '') +
      `<dl class="kv" id="device-info">${deviceInfoHtml(d)}</dl><div class="charts" id="charts"></div>`;
    $('#approve')?.addEventListener('click', async (e) => {
      e.target.disabled = true;
      try {
        upsertDevice(await getJson(`/api/devices/${encodeURIComponent(id)}/approve`, { method: 'POST' }));
        await renderDevice(id);
      } catch (err) {
        e.target.disabled = false;
        e.target.textContent = `Approve failed: ${err.message}`;
      }
    });
    const host = $('#charts');
    const s = seriesOf(beats);
    for (const [key, title, unit] of CHARTS) {
      const box = document.createElement('div');
      box.className = 'chart';
      box.dataset.chart = key;
      box.innerHTML = `<h3>${esc(title)} <span class="dim">(${esc(unit)})</span></h3>`;
      host.appendChild(box);
      const width = Math.max(260, box.clientWidth - 16);
      const chart = new window.uPlot(chartOpts(title, unit, width), [s.x, s[key]], box);
      state.charts.push({ key, chart, box });
      markPoints(box, s[key]);
    }
  }

  /** How many points a chart shows (tests wait on it), and a note where the device reports none. */
  function markPoints(box, ys) {
    const n = ys.filter((y) => y !== null && y !== undefined).length;
    box.dataset.points = String(n);
    box.classList.toggle('empty', n === 0);
  }

  let deviceTimer = null;
  /** Live: at most one refresh of the open device page per second. */
  function scheduleDeviceRefresh() {
    if (deviceTimer) return;
    deviceTimer = setTimeout(async () => {
      deviceTimer = null;
      const id = state.deviceId;
      if (state.route !== 'device' || !id || state.charts.length === 0) return;
      try {
        const [d, beats] = await Promise.all([
          getJson(`/api/devices/${encodeURIComponent(id)}`),
          getJson(`/api/devices/${encodeURIComponent(id)}/heartbeats?limit=500`),
        ]);
        if (state.deviceId !== id) return;
        $('#device-info').innerHTML = deviceInfoHtml(d);
        const s = seriesOf(beats);
        for (const { key, chart, box } of state.charts) {
          chart.setData([s.x, s[key]]);
          markPoints(box, s[key]);
        }
      } catch {
        // the next event tries again
      }
    }, 1000);
  }

  // ---- alerts ----
  const ALERT_TITLE = {
    history_rewritten: 'History rewritten',
    non_compliant: 'Not compliant',
    device_pending: 'Awaiting approval',
    heartbeats_lost: 'Heartbeats lost',
    offline: 'Offline',
    policy_refused: 'Policy refused',
  };

  function alertHtml(a) {
    return (
      `<li data-code="${esc(a.code)}"><b>${esc(ALERT_TITLE[a.code] || a.code)}</b> ` +
      (a.deviceId
        ? `<a href="#/device/${encodeURIComponent(a.deviceId)}"><code>${esc(short(a.deviceId, 16))}</code></a> `
        : '') +
      `<span class="dim">${esc(a.timeMs ? ago(a.timeMs) : '')}</span><div>${esc(a.message)}</div></li>`
    );
  }

  /** What is wrong now, from the device list: offline, non-compliant, rewritten history, refused policies. */
  function conditions() {
    const out = [];
    for (const d of sorted()) {
      if (!d.online && !d.pending && d.lastSeenMs)
        out.push({ code: 'offline', deviceId: d.id, timeMs: d.lastSeenMs, message: `last seen ${when(d.lastSeenMs)}` });
      if (d.historyRewritten)
        out.push({
          code: 'history_rewritten',
          deviceId: d.id,
          message: 'a checkpoint is inconsistent with an earlier one',
        });
      if (d.compliance === 'non_compliant')
        out.push({ code: 'non_compliant', deviceId: d.id, message: (d.complianceReasons || []).join('; ') });
      for (const r of d.complianceReasons || [])
        if (r.startsWith('policy refused')) out.push({ code: 'policy_refused', deviceId: d.id, message: r });
    }
    return out;
  }

  function renderAlerts() {
    const badge = $('#alert-count');
    badge.hidden = state.alerts.length === 0;
    badge.textContent = String(state.alerts.length);
    if (state.route !== 'alerts') return;
    const now = conditions();
    $('#conditions').innerHTML =
      now.map(alertHtml).join('') || '<li class="fine">Every device is online and compliant.</li>';
    $('#alerts').innerHTML = state.alerts.map(alertHtml).join('') || '<li class="fine">No alerts.</li>';
  }

  async function loadAlerts() {
    state.alerts = await getJson('/api/alerts?limit=200');
    renderAlerts();
  }

  // ---- provenance check ----
  async function checkFile(file) {
    const out = $('#verdict');
    out.hidden = false;
    out.textContent = 'Checking…';
    let v;
    try {
      const res = await fetch('/api/verify', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: await file.text(),
      });
      v = await res.json();
      if (v.error) v = { ok: false, code: v.error.code, message: v.error.message };
    } catch (e) {
      v = { ok: false, code: 'EW_FLEET_INTERNAL', message: String(e) };
    }
    const about =
      v.device || v.model
        ? `<dl class="kv"><dt>Device</dt><dd><code>${esc(v.device)}</code></dd><dt>Model</dt><dd>${esc(v.model)} <code>${esc(v.modelDigest)}</code></dd>` +
          `<dt>When</dt><dd>${esc(v.time ? new Date(Number(v.time)).toISOString() : '–')}</dd><dt>Provenance</dt><dd>${esc(v.mode)}${
            v.index !== undefined && v.index !== null ? `, record ${esc(v.index)} of the device's audit log` : ''
          }</dd></dl>`
        : '';
    out.className = `verdict ${v.ok ? 'good' : 'failed'}`;
    out.innerHTML = v.ok
      ? `<h2 class="ok" id="verdict-title">✔ Verified</h2><p>Signed by an enrolled device; the outputs are the ones it recorded.</p>${about}`
      : `<h2 class="bad" id="verdict-title">✘ Not verified</h2><p>Failure code: <code id="verdict-code">${esc(v.code)}</code></p>` +
        `<p>${esc(v.message)}</p>${about ? `<p class="dim">What the file claims:</p>${about}` : ''}`;
  }

  function setupDrop() {
    const drop = $('#drop');
    const input = $('#file');
    input.addEventListener('change', () => input.files[0] && checkFile(input.files[0]));
    drop.addEventListener('dragover', (e) => {
      e.preventDefault();
      drop.classList.add('over');
    });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      const f = e.dataTransfer.files[0];
      if (f) checkFile(f);
    });
  }

  // ---- routing ----
  async function route() {
    const [, page, arg] = (location.hash || '#/').split('/');
    state.route = page === 'device' ? 'device' : page || 'devices';
    if (!['devices', 'device', 'alerts', 'verify'].includes(state.route)) state.route = 'devices';
    state.deviceId = state.route === 'device' ? decodeURIComponent(arg || '') : null;
    for (const id of ['devices', 'device', 'alerts', 'verify']) $(`#${id}-view`).hidden = id !== state.route;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === state.route);
    if (state.route === 'devices') renderDevices();
    if (state.route === 'device') await renderDevice(state.deviceId);
    if (state.route === 'alerts') renderAlerts();
  }

  // ---- live updates ----
  const stale = new Set();
  let fetchTimer = null;
  /** A heartbeat was stored: fetch the devices it concerns (one request each, or the whole list for a burst). */
  function deviceChanged(id) {
    stale.add(id);
    if (fetchTimer) return;
    fetchTimer = setTimeout(async () => {
      fetchTimer = null;
      const ids = [...stale];
      stale.clear();
      try {
        if (ids.length > 25) {
          for (const d of await getJson('/api/devices')) if (ids.includes(d.id)) upsertDevice(d);
        } else {
          const views = await Promise.all(
            ids.map((i) => getJson(`/api/devices/${encodeURIComponent(i)}`).catch(() => null)),
          );
          for (const d of views) if (d) upsertDevice(d);
        }
      } catch {
        for (const i of ids) stale.add(i);
      }
    }, 30);
  }

  function connectEvents() {
    const live = $('#live');
    const es = new EventSource('/api/events');
    es.onopen = () => {
      live.classList.add('on');
      live.title = 'live updates: connected';
    };
    es.onerror = () => {
      live.classList.remove('on');
      live.title = 'live updates: reconnecting';
    };
    const parse = (e) => {
      try {
        return JSON.parse(e.data);
      } catch {
        return null;
      }
    };
    es.addEventListener('heartbeat', (e) => {
      const h = parse(e);
      if (h?.deviceId) deviceChanged(h.deviceId);
    });
    es.addEventListener('device', (e) => {
      const d = parse(e);
      if (d?.id) upsertDevice(d);
      if (state.route === 'alerts') renderAlerts();
    });
    es.addEventListener('alert', (e) => {
      const a = parse(e);
      if (!a) return;
      state.alerts.unshift(a);
      renderAlerts();
      renderSummary();
    });
  }

  // "Last seen" ages move on without a redraw of the rows.
  setInterval(() => {
    for (const td of document.querySelectorAll('td[data-ago]')) td.textContent = ago(Number(td.dataset.ago) || 0);
  }, 5000);

  document.addEventListener('DOMContentLoaded', async () => {
    for (const id of ['#filter-text', '#filter-online', '#filter-compliance'])
      $(id).addEventListener('input', renderDevices);
    $('#devices tbody').addEventListener('click', (e) => {
      if (e.target.closest('a')) return;
      const tr = e.target.closest('tr[data-id]');
      if (tr) location.hash = `#/device/${encodeURIComponent(tr.dataset.id)}`;
    });
    setupDrop();
    window.addEventListener('hashchange', route);
    connectEvents();
    await Promise.all([loadDevices(), loadAlerts()]);
    await route();
    // What bench/dashboard.mjs measures: DOMContentLoaded to the table drawn.
    performance.mark('ew:ready');
    requestAnimationFrame(() => setTimeout(() => performance.mark('ew:painted')));
    document.body.dataset.ready = 'true';
  });
})();
