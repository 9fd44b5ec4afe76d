'use strict';
// Summarizes bench/fanout results (one JSON line per client run) into a table of medians,
// prints it, and with --docs FILE writes the "Room fan-out" section of docs/benchmarks.md
// (between the bench-fanout markers; the rest of the file is kept).
//
//   node summarize.js results/latest.jsonl [--docs ../../docs/benchmarks.md]
const fs = require('node:fs');

const argv = process.argv.slice(2);
const input = argv[0];
const docsIdx = argv.indexOf('--docs');
const docs = docsIdx >= 0 ? argv[docsIdx + 1] : null;
const metaPath = input.replace(/\.jsonl$/, '') + '.meta.json';
const meta = fs.existsSync(metaPath) ? JSON.parse(fs.readFileSync(metaPath, 'utf8')) : {};
const env = (k, d = 'unknown') => process.env[k] || meta[k] || d;

const runs = fs
  .readFileSync(input, 'utf8')
  .split('\n')
  .filter((l) => l.trim())
  .map((l) => JSON.parse(l));

const SERVERS = [
  ['tether-ws', 'tether WS `/ws/rooms`'],
  ['socketio', 'Socket.IO ' + env('BENCH_SIO_VERSION', '4.8')],
  ['tether-tcp', 'tether TCP lines'],
];

const median = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x)).sort((a, b) => a - b);
  if (!v.length) return null;
  const m = v.length >> 1;
  return v.length % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
};
const range = (xs) => {
  const v = xs.filter((x) => typeof x === 'number' && Number.isFinite(x));
  return v.length ? [Math.min(...v), Math.max(...v)] : null;
};
const ok = (s) => runs.filter((r) => r.server === s && !r.failed);
const main = runs.filter((r) => SERVERS.some(([s]) => s === r.server));
const first = main.find((r) => !r.failed);
const phase = (r, name) => (r.phases || []).find((p) => p.phase === name);
const phaseVals = (s, name, key) => ok(s).map((r) => (phase(r, name) || {})[key]);
const fmtInt = (x) => (x === null ? 'n/a' : Math.round(x).toLocaleString('en-US'));
const fmt1 = (x) => (x === null ? 'n/a' : x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const fmtK = (x) => (x === null ? 'n/a' : x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(1)} k`);

const phaseNames = [];
for (const r of main) for (const p of r.phases || []) if (!phaseNames.includes(p.phase)) phaseNames.push(p.phase);
const pacedNames = phaseNames.filter((n) => n.startsWith('paced-')).sort((a, b) => Number(a.slice(6)) - Number(b.slice(6)));

const sat = {};
for (const [s] of SERVERS) sat[s] = median(phaseVals(s, 'saturated', 'deliveries_per_s'));
const ratio = (s) => (sat[s] !== null && sat.socketio ? sat[s] / sat.socketio : null);

const rows = [];
const row = (label, f) => rows.push([label, ...SERVERS.map(([s]) => f(s))]);
row('runs (ok / total)', (s) => `${ok(s).length} / ${main.filter((r) => r.server === s).length}`);
row('**saturated delivered msgs/s** (median; min–max)', (s) => {
  const v = phaseVals(s, 'saturated', 'deliveries_per_s');
  const rg = range(v);
  return rg ? `**${fmtK(median(v))}** (${fmtK(rg[0])}–${fmtK(rg[1])})` : 'n/a';
});
row('ratio to Socket.IO (saturated msgs/s)', (s) => (ratio(s) === null ? 'n/a' : `${ratio(s).toFixed(2)}×`));
row('saturated: server CPU / client CPU (% of a core)', (s) => {
  const a = median(phaseVals(s, 'saturated', 'server_cpu_pct'));
  const b = median(phaseVals(s, 'saturated', 'client_cpu_pct'));
  return a === null ? 'n/a' : `${a.toFixed(0)} % / ${b === null ? 'n/a' : b.toFixed(0) + ' %'}`;
});
row('saturated: other CPU on the machine / steal (% of a core)', (s) => {
  const v = ok(s).map((r) => {
    const p = phase(r, 'saturated');
    return p && p.machine_cpu_pct !== null && p.machine_cpu_pct !== undefined
      ? p.machine_cpu_pct - (p.server_cpu_pct || 0) - (p.client_cpu_pct || 0)
      : null;
  });
  const m = median(v);
  const st = median(phaseVals(s, 'saturated', 'steal_pct'));
  return m === null ? 'n/a' : `${Math.max(0, m).toFixed(0)} % / ${st === null ? 'n/a' : st.toFixed(0) + ' %'}`;
});
row('any phase: most other CPU / most steal (% of a core)', (s) => {
  let other = null;
  let steal = null;
  for (const r of ok(s)) {
    for (const p of r.phases || []) {
      if (typeof p.machine_cpu_pct === 'number') {
        const o = p.machine_cpu_pct - (p.server_cpu_pct || 0) - (p.client_cpu_pct || 0);
        other = Math.max(other ?? 0, o);
      }
      if (typeof p.steal_pct === 'number') steal = Math.max(steal ?? 0, p.steal_pct);
    }
  }
  return other === null ? 'n/a' : `${other.toFixed(0)} % / ${steal === null ? 'n/a' : steal.toFixed(0) + ' %'}`;
});
row('saturated: server CPU µs per delivery', (s) => {
  const v = ok(s).map((r) => {
    const p = phase(r, 'saturated');
    return p && p.server_cpu_pct !== null && p.deliveries_per_s ? (p.server_cpu_pct / 100 / p.deliveries_per_s) * 1e6 : null;
  });
  const m = median(v);
  return m === null ? 'n/a' : m.toFixed(2);
});
const latRow = (name, label) =>
  row(label, (s) => {
    if (!ok(s).some((r) => phase(r, name))) return 'not run';
    const p50 = median(phaseVals(s, name, 'p50_ms'));
    const p99 = median(phaseVals(s, name, 'p99_ms'));
    return `${fmt1(p50)} / ${fmt1(p99)}`;
  });
latRow('saturated', 'saturated: latency p50 / p99 (ms)');
for (const n of pacedNames) {
  const rate = Number(n.slice(6));
  latRow(n, `paced ${rate} msgs/s (${fmtK(rate * 1000).replace(' ', '')} deliveries/s): p50 / p99 (ms)`);
}
row('lost deliveries (all runs, all phases)', (s) =>
  fmtInt(ok(s).reduce((a, r) => a + (r.phases || []).reduce((b, p) => b + (p.lost || 0), 0), 0)),
);
row('disconnects / connect errors (all runs)', (s) =>
  `${ok(s).reduce((a, r) => a + (r.disconnects || 0), 0)} / ${ok(s).reduce((a, r) => a + (r.connect_errors || 0), 0)}`,
);
row('**RSS per idle connection (KiB)** (median; min–max)', (s) => {
  const v = ok(s).map((r) => r.rss_per_conn_kib);
  const rg = range(v);
  return rg ? `**${fmt1(median(v))}** (${fmt1(rg[0])}–${fmt1(rg[1])})` : 'n/a';
});
row('RSS per idle connection, each subscriber alone in its own room (KiB, diagnostic)', (s) => {
  if (s !== 'tether-ws') return '—';
  const v = ok('tether-ws-ownroom').map((r) => r.rss_per_conn_kib);
  const rg = range(v);
  return rg ? `${fmt1(median(v))} (${fmt1(rg[0])}–${fmt1(rg[1])})` : 'not run';
});
row('server RSS before / idle / peak (MiB)', (s) => {
  const m = (k) => median(ok(s).map((r) => r[k]));
  const f = (x) => (x === null ? 'n/a' : (x / 1024).toFixed(1));
  return `${f(m('rss_before_kib'))} / ${f(m('rss_idle_kib'))} / ${f(m('rss_hwm_kib'))}`;
});
row('connect + join all subscribers (s)', (s) => fmt1(median(ok(s).map((r) => r.connect_s))));

const header = ['figure (median of runs)', ...SERVERS.map(([, l]) => l)];
const table = [
  `| ${header.join(' | ')} |`,
  `|${header.map((_, i) => (i ? '---:' : '---')).join('|')}|`,
  ...rows.map((r) => `| ${r.join(' | ')} |`),
].join('\n');

const wsRss = median(ok('tether-ws').map((r) => r.rss_per_conn_kib));
const rWs = ratio('tether-ws');
const verdict = (x) => (x ? '**met**' : '**not met**');
const targets = [
  `- tether WS ≥ 5× Socket.IO delivered msgs/s: ${rWs === null ? 'n/a' : `${rWs.toFixed(2)}×`} → ${rWs === null ? '**not measured**' : verdict(rWs >= 5)}` +
    (ratio('tether-tcp') === null ? '' : ` (TCP lines: ${ratio('tether-tcp').toFixed(2)}×)`),
  `- tether ≤ 16 KiB RSS per idle WebSocket connection: ${wsRss === null ? 'n/a' : `${fmt1(wsRss)} KiB`} → ${wsRss === null ? '**not measured**' : verdict(wsRss <= 16)}`,
].join('\n');

const failures = runs.filter((r) => r.failed).map((r) => `${r.server} ${r.label}`);
const errors = runs
  .filter((r) => r.first_error || r.publisher_note)
  .map((r) => `${r.server} ${r.label}: ${String(r.first_error || r.publisher_note).slice(0, 200)}`);

console.log('\n' + table + '\n\nTargets:\n' + targets);
if (failures.length) console.log('\nFailed runs: ' + failures.join(', '));
if (errors.length) console.log('\nFirst errors:\n' + errors.map((e) => '  ' + e).join('\n'));

if (docs) {
  const section = `<!-- bench-fanout:begin (generated by bench/fanout/run.sh; edits inside are overwritten) -->
## Room fan-out: tether vs Socket.IO (\`bench/fanout\`)

1 publisher → ${first ? first.subs : '?'} WebSocket subscribers in one room, ${first ? first.payload_bytes : 64}-byte messages,
(a) tether over \`/ws/rooms\`, (b) Socket.IO ${env('BENCH_SIO_VERSION', '4.8')} (\`io.to(room).emit\`), (c) tether's TCP line fan-out.

- **Command:** \`${env('BENCH_COMMAND')}\` (parameters: \`${env('BENCH_PARAMS')}\`)
- **Machine:** ${env('BENCH_NPROC')} cores, ${env('BENCH_CPU')}, ${env('BENCH_MEM')} RAM, Linux ${env('BENCH_KERNEL')}; node ${env('BENCH_NODE')}; ${env('BENCH_RUSTC')}
- **Date:** ${env('BENCH_DATE')}
- **Pinning:** ${env('BENCH_PINNING')}
- **Load:** ${env('BENCH_LOAD')}
- **Run:** ${meta.BENCH_GIT ? `commit \`${meta.BENCH_GIT}\`; ${meta.BENCH_RUN ? `raw results kept in \`${meta.BENCH_RUN}\` (+ \`.meta.json\`)` : 'a tree with uncommitted changes: not kept under \`results/runs/\`'}` : 'commit not recorded (a run from before bench/record.sh)'}
- **Raw results:** \`bench/fanout/results/latest.jsonl\` (one JSON line per client run)

![Chart of this bench/fanout run: medians with min–max over reps](bench/fanout.svg)

*How to read the chart:* a bar is the median over reps and its whisker the min–max over reps; a latency row is light up to its highest percentile, solid up to p50, with a tick at each other percentile; an axis marked *log scale* compares ratios, not differences. The chart's header names the commit, date, raw-results file and load average of the run it was drawn from (\`bench/plot.py\`).

${table}

Targets (from the issue):

${targets}
${failures.length ? `\nFailed runs: ${failures.join(', ')}\n` : ''}${errors.length ? `\nFirst errors reported by the clients:\n\n${errors.map((e) => `- \`${e.replace(/`/g, "'")}\``).join('\n')}\n` : ''}
### Method

- **Runs.** Each scenario runs ${env('BENCH_PARAMS').match(/REPS=(\d+)/)?.[1] ?? '3'} times, interleaved (the order rotates each rep), each time against a
  freshly started server; the table gives medians. Every client run is bounded by \`timeout\` and every process
  is stopped by PID at the end (\`trap\`). Loopback only.
- **Servers.** tether: \`tether serve --http 127.0.0.1:P --tcp 127.0.0.1:P --max-clients ${first ? first.subs * 5 : 5000} --shutdown-grace 1\` (release build,
  defaults otherwise: outbound queue 1,024 messages per connection).
  Socket.IO: \`bench/fanout/socketio/server.js\`, \`transports: ['websocket']\`, defaults otherwise (pingInterval 25 s,
  no per-message deflate, in-memory adapter); \`join\` → \`socket.join(room)\` with an ack, \`pub\` → \`io.to(room).emit('msg', payload)\`.
- **Load clients.** tether: \`fanout-client\` (Rust, tokio current-thread runtime + tokio-tungstenite 0.29, one process).
  Socket.IO: \`socketio/bench.js\` (publisher + coordinator) and the subscribers spread over 2 forked node processes
  (\`socket.io-client\`), as in the anchor measurement. Subscribers connect and join (tether: \`hello\` / \`HELLO main:subN\`;
  Socket.IO: \`join\` with ack) before anything is published; the publisher (\`pub\`) joins last.
- **Payload and latency.** 64 bytes: \`#\` + 10-digit sequence + \`.\` + 20-digit CLOCK_MONOTONIC ns + padding.
  Rust reads \`clock_gettime(CLOCK_MONOTONIC)\`, node \`process.hrtime.bigint()\` (the same clock), so the publisher
  stamps at send and each subscriber computes the latency on receipt, across processes.
- **Saturated phase.** Closed loop: message *k* is sent only once message *k − ${first ? first.window : 'W'}* has reached every live
  subscriber (window ${first ? first.window : 'W'} messages = ${main[0] ? (main[0].window * main[0].subs).toLocaleString('en-US') : '?'} deliveries in flight), so server queues stay bounded (Socket.IO has
  no backpressure: an open-loop burst only measures its queueing, see anchors). ${fmtInt(Number(env('BENCH_PARAMS').match(/SAT_TETHER=(\d+)/)?.[1] ?? 0))} messages for tether,
  ${fmtInt(Number(env('BENCH_PARAMS').match(/SAT_SIO=(\d+)/)?.[1] ?? 0))} for Socket.IO (≈10 s at its rate). Delivered msgs/s = deliveries / (last delivery − first send).
  Its latency mostly reflects the window (≈ window × subscribers ÷ rate), not the server's per-message latency.
- **Paced phases.** The publisher sends at a fixed rate on an absolute schedule (${env('BENCH_PARAMS').match(/ PACED=([^ ]+)/)?.[1] ?? ''} for all, plus
  ${env('BENCH_PARAMS').match(/PACED_TETHER=([^ ]+)/)?.[1] ?? ''} for tether only, \`rate:seconds\`); p50/p99 over all deliveries of the phase.
- **RSS per idle connection.** VmRSS of the server (\`/proc/PID/status\`) after all subscribers connected and joined
  and 1.5 s of quiet, minus VmRSS before the first connection, divided by the number of subscribers.
  The diagnostic row repeats it with every subscriber creating its own room (\`new\` of \`main-i\`, \`--own-rooms\`),
  so no connection ever receives a member list longer than one entry.
- **CPU.** utime+stime from \`/proc/PID/stat\` over the phase, as % of one core (clients: all client processes).
  With 2 cores, server and clients each have one: a client near 100 % means the figure is client-bound.
  "Other CPU" is the machine's busy time (\`/proc/stat\`) minus server and clients: other jobs on the machine.
  "Steal" is time the hypervisor gave the vCPUs to someone else. Both distort a run; the script waits for a
  quiet machine before each run but cannot stop either from starting mid-run.
- **Not identical protocols.** tether pushes \`join\`/\`presence\` (WS) or \`JOINED\` (TCP) to the room's members on every
  join (O(N²) pushes while 1,000 subscribers join, drained before measuring); Socket.IO sends none. tether's WS frames
  carry JSON (\`{"type":"message","room":"main","from":"pub","text":…}\`, ~110 B), Socket.IO's \`42["msg","…"]\` (~75 B),
  TCP lines \`MSG main:pub …\` (~78 B).
<!-- bench-fanout:end -->`;
  let text = fs.existsSync(docs)
    ? fs.readFileSync(docs, 'utf8')
    : '# Benchmarks\n\nFigures measured by hand with the scripts under `bench/`. Absolute numbers drift from run to run and\nmachine to machine; compare the side-by-side ratios.\n\n';
  const re = /<!-- bench-fanout:begin[\s\S]*?<!-- bench-fanout:end -->/;
  text = re.test(text) ? text.replace(re, section) : text.replace(/\n*$/, '\n\n') + section + '\n';
  fs.writeFileSync(docs, text);
  console.log(`\nwrote ${docs}`);
}
