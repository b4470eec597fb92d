// status.js — the status page's script: polls /api/stats, draws the tables, and asks
// /api/graph for the picture of a call typed in the search box. Text from the daemon is
// only ever set as text (textContent), never parsed as HTML.
'use strict';

const kRefreshMilliseconds = 2000;
const kTopRows = 10;

function $(id) {
  return document.getElementById(id);
}

function Number0(text) {
  return Number(text || 0);
}

function FormatCount(value) {
  return Number0(value).toLocaleString('en-US');
}

function FormatMicros(micros) {
  const us = Number0(micros);
  if (us < 1000) return us + ' µs';
  if (us < 1e6) return (us / 1e3).toFixed(1) + ' ms';
  return (us / 1e6).toFixed(1) + ' s';
}

function FormatBytes(bytes) {
  let value = Number0(bytes);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    ++unit;
  }
  return (unit === 0 ? value : value.toFixed(1)) + ' ' + units[unit];
}

function FormatUptime(seconds) {
  let s = Number0(seconds);
  const d = Math.floor(s / 86400);
  s %= 86400;
  const h = Math.floor(s / 3600);
  s %= 3600;
  const m = Math.floor(s / 60);
  s %= 60;
  return 'up ' + (d ? d + 'd ' : '') + (d || h ? h + 'h ' : '') + m + 'm ' + s + 's';
}

// FillTable replaces a table's rows: `rows` is a list of lists of [text, isNumber].
function FillTable(table, rows) {
  const body = table.tBodies[0];
  body.replaceChildren();
  for (const row of rows) {
    const tr = body.insertRow();
    for (const [text, number] of row) {
      const td = tr.insertCell();
      td.textContent = text;
      if (number) td.className = 'number';
    }
  }
}

function ShowStats(stats) {
  for (const element of document.querySelectorAll('[id^=\'stat-\']')) {
    const field = element.id.slice('stat-'.length);
    const value = stats[field];
    element.textContent = field === 'bytes_on_disk' ? FormatBytes(value) : FormatCount(value);
    element.dataset.value = String(Number0(value));  // the exact number, for tools and tests
  }
  $('uptime').textContent = FormatUptime(stats.uptime_seconds);
  const functions = (stats.functions || []).map((fn) => ({
                                                  name: fn.name,
                                                  calls: Number0(fn.calls),
                                                  hits: Number0(fn.cache_hits),
                                                  executions: Number0(fn.executions),
                                                  micros: Number0(fn.execution_micros),
                                                }));
  const top = (key) => functions.slice()
                           .sort((a, b) => key(b) - key(a) || (a.name < b.name ? -1 : 1))
                           .slice(0, kTopRows);
  FillTable(
      $('top-time'),
      top((fn) => fn.micros)
          .map(
              (fn) => [
                  [fn.name], [FormatMicros(fn.micros), true], [FormatCount(fn.executions), true]]));
  FillTable(
      $('top-calls'), top((fn) => fn.calls).map((fn) => [[fn.name], [FormatCount(fn.calls), true], [
                                                  FormatCount(fn.executions), true
                                                ]]));
  const rate = (fn) => (fn.calls ? fn.hits / fn.calls : 0);
  FillTable(
      $('top-hits'),
      top(rate)
          .filter((fn) => fn.calls > 0)
          .map((fn) => [[fn.name], [(100 * rate(fn)).toFixed(1) + ' %', true], [
                 FormatCount(fn.calls), true
               ]]));
}

// ShowExecutions draws /api/executions: {"available": bool, "executions": [{"task",
// "function", "args", "micros", "reason", "reason_text", "failed", "output_changed"}]},
// newest first. An execution whose output came out equal (an early cutoff) says so.
function ShowExecutions(reply) {
  const table = $('executions-table');
  if (!reply.available) return;
  $('executions-note').hidden = true;
  table.hidden = false;
  FillTable(table, (reply.executions || []).map((e) => {
    let why = e.reason_text || e.reason || '';
    if (e.failed)
      why += ' (failed)';
    else if (e.output_changed === false)
      why += ' (same output: readers not re-executed)';
    return [[e.function], [e.args || ''], [FormatMicros(e.micros), true], [why]];
  }));
}

async function Refresh() {
  try {
    const reply = await fetch('/api/stats', {cache: 'no-store'});
    if (!reply.ok) throw new Error((await reply.json()).error || reply.statusText);
    ShowStats(await reply.json());
    const executions = await fetch('/api/executions', {cache: 'no-store'});
    if (executions.ok) ShowExecutions(await executions.json());
    $('updated').textContent = 'updated ' + new Date().toLocaleTimeString();
    document.body.dataset.loaded = 'true';
  } catch (error) {
    $('updated').textContent = 'cannot reach turbined: ' + error.message;
  }
}

async function ShowGraph(call) {
  const graph = $('graph');
  const message = $('graph-error');
  graph.dataset.state = 'loading';
  message.hidden = true;
  try {
    const reply = await fetch('/api/graph?call=' + encodeURIComponent(call), {cache: 'no-store'});
    if (!reply.ok) throw new Error((await reply.json()).error || reply.statusText);
    const svg = new DOMParser().parseFromString(await reply.text(), 'image/svg+xml');
    const root = svg.documentElement;
    if (root.nodeName !== 'svg') throw new Error('the daemon\'s picture did not parse');
    graph.replaceChildren(document.importNode(root, true));
    graph.dataset.state = 'done';
  } catch (error) {
    graph.replaceChildren();
    graph.dataset.state = 'error';
    message.textContent = error.message;
    message.hidden = false;
  }
}

function SearchFromHash() {
  const hash = location.hash;
  if (!hash.startsWith('#call=')) return;
  const call = decodeURIComponent(hash.slice('#call='.length));
  $('call').value = call;
  ShowGraph(call);
}

document.addEventListener('DOMContentLoaded', () => {
  $('graph-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const call = $('call').value.trim();
    if (!call) return;
    // The call goes into the URL, so a graph can be bookmarked and shared.
    history.replaceState(null, '', '#call=' + encodeURIComponent(call));
    ShowGraph(call);
  });
  window.addEventListener('hashchange', SearchFromHash);
  Refresh();
  setInterval(Refresh, kRefreshMilliseconds);
  SearchFromHash();
});
