// edgewarden fleet dashboard: a small single-page app over the collector's JSON API and SSE stream.
// Plain browser JavaScript with no build step; uPlot (served by the collector) draws the charts.
(() => {
  const $ = (sel) => document.querySelector(sel);
  const state = { devices: [], alerts: [], route: '', charts: [] };

  const esc = (s) => String(s ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  const short = (hex, n = 12) => (hex ? `${String(hex).slice(0, n)}…` : '');
  const stateOf = (c) => (typeof c === 'string' ? c : c?.state) || 'UNKNOWN';
  const reasonsOf = (c) => (typeof c === 'object' && c?.reasons) || [];
  const tempOf = (h) => (h && typeof h.tempMilliC === 'number' ? `${(h.tempMilliC / 1000).toFixed(1)} °C` : '–');
  const throttleOf = (h) => {
    const t = Number(h?.throttled ?? 0);
    if (!t) return '<span class="dim">none</span>';
    const now = t & 0x5 ? '<span class="bad">now</span>' : '';
    const past = t & 0x50000 ? '<span class="warn">since boot</span>' : '';
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
  const pill = (text) => {
    const cls =
      { COMPLIANT: 'ok', online: 'ok', DEGRADED: 'warn', PENDING: 'warn', NON_COMPLIANT: 'bad', offline: 'dim' }[
        text
      ] || 'dim';
    return `<span class="pill ${cls}">${esc(text)}</span>`;
  };

  async function getJson(url, init) {
    const res = await fetch(url, init);
    if (!res.ok && res.status !== 422) throw new Error(`${url}: HTTP ${res.status}`);
    return res.json();
  }

  // ---- devices table ----
  function renderDevices() {
    const text = $('#filter-text').value.trim().toLowerCase();
    const online = $('#filter-online').value;
    const compliance = $('#filter-compliance').value;
    const rows = [];
    let on = 0;
    let ok = 0;
    for (const d of state.devices) {
      if (d.online) on++;
      if (stateOf(d.compliance) === 'COMPLIANT') ok++;
      if (online && (online === 'online') !== Boolean(d.online)) continue;
      const cstate = d.pending ? 'PENDING' : stateOf(d.compliance);
      if (compliance && compliance !== cstate) continue;
      const models = (d.models || [])
        .map((m) => `${esc(m.name || '')} <code>${esc(short(m.digest, 10))}</code>`)
        .join('<br>');
      if (text && !`${d.id} ${d.fleet} ${JSON.stringify(d.models || [])}`.toLowerCase().includes(text)) continue;
      rows.push(
        `<tr data-id="${esc(d.id)}"><td data-label="Device"><code>${esc(short(d.id, 16))}</code></td><td data-label="Fleet">${esc(d.fleet)}</td>` +
          `<td data-label="Status">${pill(d.online ? 'online' : 'offline')}${d.historyRewritten ? ' <span class="pill bad">history rewritten</span>' : ''}</td>` +
          `<td data-label="Compliance">${pill(cstate)}</td><td data-label="Models">${models || '<span class="dim">none</span>'}</td>` +
          `<td data-label="Last seen">${esc(ago(d.lastSeen))}</td><td data-label="Temp">${esc(tempOf(d.health))}</td>` +
          `<td data-label="Throttling">${throttleOf(d.health)}</td></tr>`,
      );
    }
    $('#devices tbody').innerHTML = rows.join('');
    $('#summary').innerHTML =
      `<div><b id="count-devices">${state.devices.length}</b>devices</div><div><b class="ok">${on}</b>online</div>` +
      `<div><b class="ok">${ok}</b>compliant</div><div><b class="${state.alerts.length ? 'bad' : 'dim'}">${state.alerts.length}</b>alerts</div>`;
  }

  async function loadDevices() {
    state.devices = await getJson('/api/devices');
    if (state.route === 'devices') renderDevices();
  }

  // ---- one device ----
  function series(beats, pick) {
    const xs = [];
    const ys = [];
    for (const b of beats) {
      const v = pick(b);
      if (v === undefined || v === null || Number.isNaN(v)) continue;
      xs.push(Number(b.timeUnixMs ?? b.time ?? b.receivedAt) / 1000);
      ys.push(v);
    }
    return [xs, ys];
  }

  function sumModels(b, key) {
    return (b.models || []).reduce((acc, m) => acc + Number(m[key] ?? 0), 0);
  }

  function drawChart(host, title, data, unit) {
    const box = document.createElement('div');
    box.className = 'chart';
    box.innerHTML = `<h3>${esc(title)}</h3>`;
    host.appendChild(box);
    const width = Math.max(280, box.clientWidth - 16);
    const chart = new window.uPlot(
      {
        width,
        height: 180,
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [{ stroke: '#8b949e' }, { stroke: '#8b949e', label: unit }],
        series: [{}, { stroke: '#58a6ff', width: 2, label: title }],
      },
      data,
      box,
    );
    state.charts.push(chart);
  }

  async function renderDevice(id) {
    const view = $('#device-view');
    const [d, beats] = await Promise.all([
      getJson(`/api/devices/${encodeURIComponent(id)}`),
      getJson(`/api/devices/${encodeURIComponent(id)}/heartbeats?limit=500`),
    ]);
    for (const c of state.charts) c.destroy();
    state.charts = [];
    const sorted = [...beats].sort((a, b) => Number(a.seq) - Number(b.seq));
    // Inference rate: the difference of the cumulative counters between heartbeats.
    const rate = [];
    for (let i = 1; i < sorted.length; i++) {
      const dt = (Number(sorted[i].timeUnixMs) - Number(sorted[i - 1].timeUnixMs)) / 1000;
      const dn = sumModels(sorted[i], 'inferences') - sumModels(sorted[i - 1], 'inferences');
      rate.push({ ...sorted[i], rate: dt > 0 && dn >= 0 ? dn / dt : undefined });
    }
    const reasons = reasonsOf(d.compliance);
    view.innerHTML =
      `<p><a href="#/">← all devices</a></p><h1>Device <code>${esc(d.id)}</code></h1>` +
      `<dl class="kv"><dt>Fleet</dt><dd>${esc(d.fleet)}</dd><dt>Status</dt><dd>${pill(d.online ? 'online' : 'offline')} ${d.historyRewritten ? '<span class="pill bad">history rewritten</span>' : ''}</dd>` +
      `<dt>Compliance</dt><dd>${pill(d.pending ? 'PENDING' : stateOf(d.compliance))} ${reasons.map((r) => `<div class="dim">${esc(r)}</div>`).join('')}</dd>` +
      `<dt>Last seq</dt><dd>${esc(d.lastSeq)}</dd><dt>Last seen</dt><dd>${esc(ago(d.lastSeen))}</dd>` +
      `<dt>Board</dt><dd>${esc(d.board?.model || '')}</dd><dt>Temperature</dt><dd>${esc(tempOf(d.health))}</dd>` +
      `<dt>Models</dt><dd>${(d.models || []).map((m) => `${esc(m.name)} <code>${esc(m.digest)}</code>`).join('<br>') || 'none'}</dd></dl>` +
      '<div class="charts" id="charts"></div>';
    const host = $('#charts');
    drawChart(
      host,
      'Inference rate',
      series(rate, (b) => b.rate),
      '/s',
    );
    drawChart(
      host,
      'Latency p99',
      series(sorted, (b) => Math.max(0, ...(b.models || []).map((m) => Number(m.p99Us ?? 0))) / 1000),
      'ms',
    );
    drawChart(
      host,
      'Temperature',
      series(sorted, (b) => (b.health?.tempMilliC ?? undefined) / 1000),
      '°C',
    );
    drawChart(
      host,
      'Outbox depth',
      series(sorted, (b) => Number(b.outboxDepth ?? 0)),
      'entries',
    );
  }

  // ---- alerts ----
  async function loadAlerts() {
    state.alerts = await getJson('/api/alerts');
    const badge = $('#alert-count');
    badge.hidden = state.alerts.length === 0;
    badge.textContent = String(state.alerts.length);
    $('#alerts').innerHTML =
      state.alerts
        .map(
          (a) =>
            `<li><b>${esc(a.kind || a.type || a.code)}</b> <code>${esc(short(a.device || a.deviceId, 16))}</code> ` +
            `<span class="dim">${esc(ago(a.time || a.timeUnixMs || a.createdAt))}</span><div>${esc(a.message || a.detail || '')}</div></li>`,
        )
        .join('') || '<li class="dim" style="border-color:#3fb950">No alerts.</li>';
  }

  // ---- provenance check ----
  async function checkFile(file) {
    const out = $('#verdict');
    out.hidden = false;
    out.textContent = 'Checking…';
    let body;
    try {
      body = JSON.parse(await file.text());
    } catch {
      out.innerHTML =
        '<h2 class="bad">Not a result file</h2><p>The file is not JSON. Code: <code>EW_PROVENANCE_MALFORMED</code></p>';
      return;
    }
    const v = await getJson('/api/verify', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    out.innerHTML = v.ok
      ? `<h2 class="ok" id="verdict-title">Verified</h2><dl class="kv"><dt>Device</dt><dd><code>${esc(v.device)}</code></dd><dt>Model</dt><dd>${esc(v.model)} <code>${esc(v.modelDigest)}</code></dd><dt>When</dt><dd>${esc(new Date(Number(v.time)).toISOString())}</dd><dt>Mode</dt><dd>${esc(v.mode)}</dd></dl>`
      : `<h2 class="bad" id="verdict-title">Not verified</h2><p>Failure code: <code id="verdict-code">${esc(v.code)}</code></p><p>${esc(v.message)}</p>${v.device ? `<p>Claims device <code>${esc(v.device)}</code></p>` : ''}`;
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

  // ---- routing and live updates ----
  async function route() {
    const hash = location.hash || '#/';
    const [, page, arg] = hash.split('/');
    state.route = page === 'device' ? 'device' : page || 'devices';
    for (const id of ['devices', 'device', 'alerts', 'verify']) $(`#${id}-view`).hidden = id !== state.route;
    for (const a of document.querySelectorAll('nav a')) a.classList.toggle('active', a.dataset.nav === state.route);
    if (state.route === 'devices') renderDevices();
    if (state.route === 'device') await renderDevice(decodeURIComponent(arg || ''));
    if (state.route === 'alerts') await loadAlerts();
  }

  let pending = null;
  function refreshSoon(deviceId) {
    if (pending) return;
    // Coalesce bursts of events (a fleet of 1,000 devices sends many) into one refresh.
    pending = setTimeout(async () => {
      pending = null;
      await Promise.all([loadDevices(), loadAlerts()]);
      if (state.route === 'device' && (!deviceId || location.hash.includes(deviceId))) await route();
    }, 150);
  }

  function connectEvents() {
    const live = $('#live');
    const es = new EventSource('/api/events');
    es.onopen = () => live.classList.add('on');
    es.onerror = () => live.classList.remove('on');
    es.onmessage = (e) => {
      let msg = {};
      try {
        msg = JSON.parse(e.data);
      } catch {}
      refreshSoon(msg.device);
    };
  }

  document.addEventListener('DOMContentLoaded', async () => {
    for (const id of ['#filter-text', '#filter-online', '#filter-compliance'])
      $(id).addEventListener('input', renderDevices);
    $('#devices tbody').addEventListener('click', (e) => {
      const tr = e.target.closest('tr[data-id]');
      if (tr) location.hash = `#/device/${encodeURIComponent(tr.dataset.id)}`;
    });
    setupDrop();
    window.addEventListener('hashchange', route);
    await Promise.all([loadDevices(), loadAlerts()]);
    await route();
    connectEvents();
    document.body.dataset.ready = 'true';
  });
})();
