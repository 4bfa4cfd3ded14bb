// Draws the report for the scope chosen in the team and service selectors. Everything shown comes
// from the JSON in #report-data; plotly.js arrives gzip-compressed and is inflated in the browser.
(function () {
  'use strict';
  var root = document.documentElement;
  window.addEventListener('error', function (e) { root.dataset.errors = (root.dataset.errors || '') + e.message + ';'; });
  window.addEventListener('unhandledrejection', function (e) {
    root.dataset.errors = (root.dataset.errors || '') + String(e.reason) + ';';
  });

  var data = JSON.parse(document.getElementById('report-data').textContent);
  var LEVEL_COLOURS = { elite: '#0b7a3e', high: '#2d6cdf', medium: '#b7791f', low: '#c53030' };
  var FAILURE_METRICS = { change_failure_rate: true, recovery_time: true };
  var SAMPLE_WORDS = {
    deployment_frequency: 'deployments', lead_time: 'changes', change_failure_rate: 'deployments of services tracking failures',
    recovery_time: 'resolved failures', rework_rate: 'deployments'
  };
  var SAMPLE_COLUMNS = {
    deployments_per_day: 'deployment_count', lead_time_median_seconds: 'lead_time_n',
    change_failure_rate: 'failure_tracked_deployment_count', recovery_time_median_seconds: 'recovery_time_n',
    rework_rate: 'deployment_count'
  };
  var teamSelect = document.getElementById('team');
  var serviceSelect = document.getElementById('service');

  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { if (k === 'text') { node.textContent = attrs[k]; } else { node.setAttribute(k, attrs[k]); } });
    (children || []).forEach(function (c) { node.appendChild(typeof c === 'string' ? document.createTextNode(c) : c); });
    return node;
  }

  function hours(seconds) {
    if (seconds === null || seconds === undefined) { return '-'; }
    var h = seconds / 3600;
    if (h < 1) { return Math.round(seconds / 60) + ' min'; }
    if (h < 48) { return h.toFixed(1) + ' h'; }
    return (h / 24).toFixed(1) + ' d';
  }

  function display(metric, value) {
    if (value === null || value === undefined) { return { value: '-', unit: '' }; }
    if (metric === 'deployment_frequency') {
      return value >= 1 ? { value: value.toFixed(1), unit: 'per day' } : { value: (value * 7).toFixed(1), unit: 'per week' };
    }
    if (metric === 'lead_time' || metric === 'recovery_time') {
      var text = hours(value).split(' ');
      return { value: text[0], unit: { h: 'hours', d: 'days', min: 'minutes' }[text[1]] };
    }
    return { value: (value * 100).toFixed(1), unit: '%' };
  }

  function scopeKey() {
    if (serviceSelect.value) { return 'service:' + serviceSelect.value; }
    if (teamSelect.value) { return 'team:' + teamSelect.value; }
    return 'overall:all';
  }

  function inScope(row, key) {
    var parts = key.split(/:(.*)/s);
    if (parts[0] === 'service') { return row.service === parts[1]; }
    if (parts[0] === 'team') { return row.team === parts[1]; }
    return true;
  }

  function tracksFailures(key) {
    var tile = (data.tiles[key] || {}).change_failure_rate;
    return !(tile && tile.level === 'not_tracked');
  }

  function renderTiles(key) {
    var tiles = document.getElementById('tiles');
    tiles.replaceChildren();
    data.metrics.forEach(function (metric) {
      var t = (data.tiles[key] || {})[metric.id] || {};
      var body = [el('h3', { text: metric.title })];
      if (t.level === 'not_tracked') {
        body.push(el('div', { class: 'untracked', text: 'not tracked' }));
        body.push(el('div', { class: 'band', text: 'No tool of this scope records failures, so it cannot be measured.' }));
      } else {
        var shown = display(metric.id, t.value);
        var headline = el('div', {}, [el('span', { class: 'value', text: shown.value }), el('span', { class: 'unit', text: shown.unit })]);
        body.push(headline);
        if (t.level) {
          body.push(el('div', {}, [el('span', { class: 'badge ' + t.level, text: t.level })]));
          body.push(el('div', { class: 'band', text: (t.within_band ? 'DORA ' + data.benchmark_year + ': ' : 'Outside every band; nearest: ') + t.band }));
        } else if (metric.id === 'rework_rate') {
          body.push(el('div', { class: 'band', text: 'DORA publishes no bands for rework rate.' }));
        }
        body.push(el('div', { class: 'sample', text: 'n = ' + (t.n === null || t.n === undefined ? 0 : t.n) + ' ' + SAMPLE_WORDS[metric.id] }));
        body.push(changeLine(metric, t));
      }
      tiles.appendChild(el('article', { class: 'tile', 'data-metric': metric.id, 'data-value': t.value === null || t.value === undefined ? '' : String(t.value) }, body));
    });
  }

  function changeLine(metric, t) {
    var line = el('div', { class: 'change' });
    if (t.value === null || t.value === undefined || t.previous === null || t.previous === undefined) {
      line.textContent = 'No value for the previous ' + windowDays() + ' days to compare with.';
      return line;
    }
    var delta = t.value - t.previous;
    var better = metric.higher_is_better ? delta > 0 : delta < 0;
    var arrow = delta === 0 ? '→' : delta > 0 ? '▲' : '▼';
    var relative = t.previous === 0 ? '' : ' (' + (delta > 0 ? '+' : '') + (100 * delta / Math.abs(t.previous)).toFixed(0) + ' %)';
    var shown = display(metric.id, t.previous);
    line.appendChild(el('span', { class: delta === 0 ? '' : better ? 'good' : 'bad', text: arrow + relative }));
    line.appendChild(document.createTextNode(' vs ' + shown.value + ' ' + shown.unit + ' in the ' + windowDays() + ' days before (n = ' + t.previous_n + ')'));
    return line;
  }

  function windowDays() {
    if (!data.window.start) { return 0; }
    return Math.round((Date.parse(data.window.end) - Date.parse(data.window.start)) / 86400000) + 1;
  }

  function weekRange() {
    var weeks = ((data.series['overall:all'] || [])[0] || {}).weeks || [];
    if (!weeks.length) { return undefined; }
    var last = new Date(Date.parse(weeks[weeks.length - 1]) + 7 * 86400000).toISOString().slice(0, 10);
    return [weeks[0], last];
  }

  function rollingMedian(values, width) {
    return values.map(function (_, i) {
      var seen = values.slice(Math.max(0, i - width + 1), i + 1).filter(function (v) { return v !== null; }).sort(function (a, b) { return a - b; });
      if (seen.length < Math.ceil(width / 2) || values[i] === null) { return null; }
      var mid = Math.floor(seen.length / 2);
      return seen.length % 2 ? seen[mid] : (seen[mid - 1] + seen[mid]) / 2;
    });
  }

  function bandShapes(metric, top) {
    var bands = data.bands[metric.id] || [];
    var shapes = [];
    var seen = {};
    bands.forEach(function (band) {
      var lower = band.lower * metric.scale;
      var upper = band.upper === null ? top : band.upper * metric.scale;
      var key = lower + '-' + upper;
      if (seen[key]) { return; }  // DORA lists one band for several levels in some years: shade it once
      seen[key] = true;
      var colour = LEVEL_COLOURS[band.level];
      if (upper === lower) {
        shapes.push({ type: 'line', xref: 'paper', x0: 0, x1: 1, yref: 'y', y0: lower, y1: lower, layer: 'below',
          line: { color: colour, width: 1.5, dash: 'dot' }, label: { text: band.level, textposition: 'end', font: { size: 10, color: colour } } });
      } else {
        shapes.push({ type: 'rect', xref: 'paper', x0: 0, x1: 1, yref: 'y', y0: lower, y1: Math.min(upper, top), layer: 'below',
          fillcolor: colour, opacity: 0.09, line: { width: 0 },
          label: { text: band.level, textposition: 'top right', font: { size: 10, color: colour } } });
      }
    });
    return shapes;
  }

  function renderChart(metric, key) {
    var node = document.getElementById('chart-' + metric.id);
    var traces = [];
    var top = 0;
    var untracked = FAILURE_METRICS[metric.id] && !tracksFailures(key);
    var sampleColumn = SAMPLE_COLUMNS[metric.column];
    var series = untracked ? [] : (data.series[key] || []);
    series.forEach(function (s) {
      var y = s[metric.column].map(function (v) { return v === null ? null : v * metric.scale; });
      y.forEach(function (v) { if (v !== null && v > top) { top = v; } });
      traces.push({
        type: 'scatter', mode: 'lines+markers', name: s.name, x: s.weeks, y: y, customdata: s[sampleColumn],
        connectgaps: false, marker: { size: 5 },
        hovertemplate: 'week of %{x|%d %b %Y}<br>%{y:.2f} ' + metric.unit + '<br>n = %{customdata}<extra>' + s.name + '</extra>'
      });
      if (series.length <= 2) {
        traces.push({
          type: 'scatter', mode: 'lines', name: s.name + ', 4-week median', x: s.weeks, y: rollingMedian(y, 4),
          connectgaps: false, line: { dash: 'dash', width: 2 }, hoverinfo: 'skip', opacity: 0.7
        });
      }
    });
    top = top > 0 ? top * 1.15 : 1;
    var layout = {
      title: { text: metric.title, x: 0.02, font: { size: 15 } },
      margin: { t: 45, r: 20, b: 50, l: 65 }, height: 340, hovermode: 'closest',
      legend: { orientation: 'h', y: -0.22 },
      xaxis: { title: { text: 'week starting' }, type: 'date', range: weekRange() },
      yaxis: { title: { text: metric.unit }, range: [0, top], rangemode: 'tozero' },
      shapes: untracked ? [] : bandShapes(metric, top),
      annotations: untracked || !series.length ? [{
        text: untracked ? 'not tracked: no tool of this scope records failures' : 'no data for this scope',
        xref: 'paper', yref: 'paper', x: 0.5, y: 0.5, showarrow: false, font: { size: 14, color: '#616e7c' }
      }] : []
    };
    return window.Plotly.react(node, traces, layout, { displaylogo: false, responsive: true });
  }

  function renderStages(key) {
    var stages = data.stages[key] || { weeks: [], n: [], coding: [], review: [], deploy: [] };
    var colours = { coding: '#7b8794', review: '#2d6cdf', deploy: '#0b7a3e' };
    var traces = ['coding', 'review', 'deploy'].map(function (stage) {
      return {
        type: 'bar', name: stage, x: stages.weeks, customdata: stages.n, marker: { color: colours[stage] },
        y: stages[stage].map(function (v) { return v === null ? null : v / 3600; }),
        hovertemplate: 'week of %{x|%d %b %Y}<br>' + stage + ': %{y:.1f} h (median)<br>n = %{customdata} changes<extra></extra>'
      };
    });
    return window.Plotly.react(document.getElementById('chart-stages'), traces, {
      title: { text: 'Lead time by stage', x: 0.02, font: { size: 15 } }, barmode: 'stack', height: 340,
      margin: { t: 45, r: 20, b: 50, l: 65 }, legend: { orientation: 'h', y: -0.22 },
      xaxis: { title: { text: 'week starting' }, type: 'date', range: weekRange() },
      yaxis: { title: { text: 'hours (median of each stage)' } },
      annotations: stages.weeks.length ? [] : [{ text: 'no changes with a lead time for this scope', xref: 'paper', yref: 'paper', x: 0.5, y: 0.5, showarrow: false }]
    }, { displaylogo: false, responsive: true });
  }

  function renderTable(id, rows, columns, emptyText) {
    var table = document.getElementById(id);
    table.replaceChildren();
    table.appendChild(el('thead', {}, [el('tr', {}, columns.map(function (c) { return el('th', { class: c.num ? 'num' : '', text: c.title }); }))]));
    var body = el('tbody');
    if (!rows.length) {
      body.appendChild(el('tr', {}, [el('td', { class: 'empty', colspan: String(columns.length), text: emptyText })]));
    }
    rows.forEach(function (row) {
      body.appendChild(el('tr', {}, columns.map(function (c) {
        var cell = c.cell(row);
        return el('td', { class: (c.num ? 'num ' : '') + (cell.cls || ''), text: cell.text === null || cell.text === undefined ? '-' : String(cell.text) });
      })));
    });
    table.appendChild(body);
  }

  function moment(iso) { return iso ? iso.slice(0, 16).replace('T', ' ') : '-'; }
  function text(value) { return { text: value }; }

  function renderTables(key) {
    var slowest = data.slowest_changes.filter(function (r) { return inScope(r, key); }).slice(0, 10);
    renderTable('slowest-changes', slowest, [
      { title: 'service', cell: function (r) { return text(r.service); } },
      { title: 'change', cell: function (r) { return text('#' + r.source_change_id + ' ' + (r.title || '')); } },
      { title: 'deployed', cell: function (r) { return text(moment(r.deployed_at)); } },
      { title: 'lead time', num: true, cell: function (r) { return text(hours(r.lead_time_seconds)); } },
      { title: 'coding', num: true, cell: function (r) { return text(hours(r.coding_seconds)); } },
      { title: 'review', num: true, cell: function (r) { return text(hours(r.review_seconds)); } },
      { title: 'deploy', num: true, cell: function (r) { return text(hours(r.deploy_seconds)); } }
    ], 'No change with a lead time in the window for this scope.');
    var untracked = !tracksFailures(key);
    var failures = untracked ? [] : data.failures.filter(function (r) { return inScope(r, key); });
    renderTable('failures', failures, [
      { title: 'service', cell: function (r) { return text(r.service); } },
      { title: 'failure', cell: function (r) { return text('#' + r.source_failure_id + ' ' + (r.title || '')); } },
      { title: 'severity', num: true, cell: function (r) { return text(r.severity); } },
      { title: 'detected', cell: function (r) { return text(moment(r.detected_at)); } },
      { title: 'status', cell: function (r) { return r.is_open ? { text: 'open', cls: 'open' } : text('resolved ' + moment(r.resolved_at)); } },
      { title: 'recovery time', num: true, cell: function (r) { return text(hours(r.recovery_time_seconds)); } },
      { title: 'caused by deployment', cell: function (r) { return text(r.caused_by_deployment_id ? r.caused_by_deployment_id + ' (' + moment(r.caused_by_deployed_at) + ')' : 'not linked'); } },
      { title: 'fixed by', cell: function (r) { return text(r.fixed_by_deployment_id); } }
    ], untracked ? 'Not tracked: no tool of this scope records failures.' : 'No open or recent failure for this scope.');
    var rework = data.rework.filter(function (r) { return inScope(r, key); });
    renderTable('rework', rework, [
      { title: 'service', cell: function (r) { return text(r.service); } },
      { title: 'environment', cell: function (r) { return text(r.environment); } },
      { title: 'deployed', cell: function (r) { return text(moment(r.deployed_at)); } },
      { title: 'kind', cell: function (r) { return text(r.is_rollback ? 'rollback' : 'fix'); } },
      { title: 'deployment', cell: function (r) { return text(r.source + ':' + r.source_deployment_id); } }
    ], 'No fix or rollback deployment in the last days for this scope.');
  }

  function limitServicesToTeam() {
    var team = teamSelect.value;
    Array.prototype.forEach.call(serviceSelect.options, function (option) {
      option.hidden = Boolean(option.value) && Boolean(team) && option.dataset.team !== team;
    });
    if (serviceSelect.selectedOptions[0] && serviceSelect.selectedOptions[0].hidden) { serviceSelect.value = ''; }
  }

  function render() {
    var key = scopeKey();
    var scope = data.scopes.filter(function (s) { return s.key === key; })[0];
    document.getElementById('scope-title').textContent =
      scope.level === 'overall' ? 'All teams' : scope.level === 'team' ? 'Team ' + scope.name : 'Service ' + scope.name + ' (team ' + scope.team + ')';
    renderTiles(key);
    renderTables(key);
    var drawn = data.metrics.map(function (m) { return renderChart(m, key); }).concat([renderStages(key)]);
    return Promise.all(drawn).then(function () {
      // For people and the browser test: which scope is shown, how many charts were drawn and with how many traces.
      document.body.dataset.scope = key;
      document.querySelectorAll('.chart').forEach(function (node) { node.dataset.traces = (node.data || []).length; });
      document.body.dataset.chartsRendered = document.querySelectorAll('.js-plotly-plot .main-svg').length ?
        document.querySelectorAll('.chart.js-plotly-plot').length : 0;
    });
  }

  function fromHash() {
    var params = new URLSearchParams(window.location.hash.slice(1));
    if (params.get('team')) { teamSelect.value = params.get('team'); }
    limitServicesToTeam();
    if (params.get('service')) { serviceSelect.value = params.get('service'); followService(); }
  }

  function followService() {
    var option = serviceSelect.selectedOptions[0];
    if (option && option.dataset.team) { teamSelect.value = option.dataset.team; limitServicesToTeam(); }
  }

  function loadPlotly() {
    var packed = document.getElementById('plotly-gzip-base64').textContent.trim();
    var bytes = Uint8Array.from(atob(packed), function (c) { return c.charCodeAt(0); });
    var stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'));
    return new Response(stream).text().then(function (source) {
      var script = document.createElement('script');
      script.text = source;
      document.head.appendChild(script);
    });
  }

  teamSelect.addEventListener('change', function () { limitServicesToTeam(); render(); });
  serviceSelect.addEventListener('change', function () { followService(); render(); });
  fromHash();
  loadPlotly().then(render);
})();
