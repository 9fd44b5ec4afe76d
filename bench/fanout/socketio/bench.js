'use strict';
// Socket.IO side of bench/fanout: the same scenario and JSON output as `fanout-client`.
// Subscribers are spread over --procs forked node processes (sub.js); this process is the
// coordinator and the publisher (one socket that emits `pub`, which the server re-broadcasts
// to the room with io.to(room).emit). Prints one JSON line.
const { fork } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');
const { io } = require('socket.io-client');

function parseArgs(argv) {
  const a = {
    url: 'http://127.0.0.1:8800',
    room: 'main',
    subs: 1000,
    procs: 2,
    serverPid: null,
    saturated: 1000,
    window: 32,
    paced: '20:5,50:5',
    size: 64,
    settleMs: 1500,
    idleMs: 3000,
    stallMs: 2000,
    concurrency: 32,
    label: '',
  };
  for (let i = 2; i < argv.length; i += 2) {
    const k = argv[i].replace(/^--/, '').replace(/-([a-z])/g, (_, c) => c.toUpperCase());
    if (!(k in a)) throw new Error(`unknown option ${argv[i]}`);
    const v = argv[i + 1];
    a[k] = typeof a[k] === 'number' || k === 'serverPid' ? Number(v) : v;
  }
  return a;
}

const args = parseArgs(process.argv);
const sleep = (ms) => new Promise((r) => setTimeout(r, Math.max(0, ms)));
const monoNs = () => Number(process.hrtime.bigint());
const r2 = (x) => Math.round(x * 100) / 100;

function statusKib(pid, key) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = s.match(new RegExp(`^${key}\\s+(\\d+) kB`, 'm'));
    return m ? Number(m[1]) : null;
  } catch {
    return null;
  }
}

function cpuS(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

// Machine-wide CPU seconds from /proc/stat: busy (user+nice+system+irq+softirq) and steal.
function machineCpuS() {
  try {
    const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
    return { busy: (f[0] + f[1] + f[2] + f[5] + f[6]) / 100, steal: (f[7] || 0) / 100 };
  } catch {
    return null;
  }
}

function payload(seq, size) {
  let s = `#${String(seq).padStart(10, '0')}.${process.hrtime.bigint().toString().padStart(20, '0')}.`;
  if (s.length < size) s += 'x'.repeat(size - s.length);
  return s;
}

function percentile(sorted, q) {
  if (sorted.length === 0) return null;
  const idx = Math.min(sorted.length, Math.max(1, Math.ceil(q * sorted.length))) - 1;
  return r2(sorted[idx] / 1000);
}

async function main() {
  // phases, numbered like fanout-client's
  const phases = [];
  let base = 0;
  if (args.saturated > 0) {
    phases.push({ name: 'saturated', base, msgs: args.saturated, rate: null });
    base += args.saturated;
  }
  for (const spec of String(args.paced).split(',').filter((s) => s.trim())) {
    const [r, s] = spec.split(':').map(Number);
    const msgs = Math.max(1, Math.round(r * s));
    phases.push({ name: `paced-${r}`, base, msgs, rate: r });
    base += msgs;
  }
  const total = base;
  const doneProcs = new Uint8Array(total);
  let stopping = false;
  let firstError = null;
  const rssBefore = args.serverPid ? statusKib(args.serverPid, 'VmRSS:') : null;

  // subscriber processes
  const kids = [];
  const per = Math.ceil(args.subs / args.procs);
  let wake = null;
  const poke = () => {
    if (wake) {
      const w = wake;
      wake = null;
      w();
    }
  };
  const waitPoke = (ms) =>
    new Promise((r) => {
      const t = setTimeout(() => {
        wake = null;
        r(false);
      }, ms);
      wake = () => {
        clearTimeout(t);
        r(true);
      };
    });
  for (let p = 0; p < args.procs; p++) {
    const from = p * per;
    const count = Math.max(0, Math.min(per, args.subs - from));
    if (count === 0) continue;
    const child = fork(path.join(__dirname, 'sub.js'), [], { serialization: 'advanced' });
    const kid = { child, count, joined: null, alive: 0, delivered: phases.map(() => 0), lastRecv: phases.map(() => 0), result: null };
    child.on('message', (m) => {
      if (m.t === 'joined') {
        kid.joined = m.alive;
        kid.alive = m.alive;
        if (m.firstError && !firstError) firstError = m.firstError;
      } else if (m.t === 'done') {
        doneProcs[m.seq]++;
      } else if (m.t === 'prog') {
        kid.delivered = m.delivered;
        kid.lastRecv = m.lastRecv;
        kid.alive = m.alive;
      } else if (m.t === 'disc') {
        kid.alive--;
      } else if (m.t === 'result') {
        kid.result = m;
      } else if (m.t === 'fatal') {
        if (!firstError) firstError = m.error;
        kid.joined = kid.joined ?? 0;
      }
      poke();
    });
    child.send({ t: 'start', cfg: { url: args.url, room: args.room, from, count, concurrency: Math.max(1, Math.floor(args.concurrency / args.procs)), phases } });
    kids.push(kid);
  }
  const t0 = Date.now();
  while (kids.some((k) => k.joined === null) && Date.now() - t0 < 120000) await waitPoke(100);
  const connectS = (Date.now() - t0) / 1000;
  const joined = kids.reduce((a, k) => a + (k.joined || 0), 0);

  await sleep(args.settleMs);
  const rssIdle = args.serverPid ? statusKib(args.serverPid, 'VmRSS:') : null;

  // publisher
  const pub = io(args.url, { transports: ['websocket'], forceNew: true, reconnection: false });
  await new Promise((resolve, reject) => {
    pub.on('connect', resolve);
    pub.on('connect_error', reject);
  });
  let publisherNote = null;
  pub.on('disconnect', (reason) => {
    if (!stopping && !publisherNote) publisherNote = `publisher disconnected: ${reason}`;
  });
  await sleep(300);

  const activeKids = () => kids.filter((k) => k.alive > 0).length;
  const sumDelivered = (pi) => kids.reduce((a, k) => a + (k.delivered[pi] || 0), 0);
  const outPhases = [];
  for (const [pi, ph] of phases.entries()) {
    const perMsg = kids.reduce((a, k) => a + k.alive, 0);
    const expected = perMsg * ph.msgs;
    const kidPids = kids.map((k) => k.child.pid);
    const cpuSum = () => kidPids.reduce((a, p) => a + (cpuS(p) || 0), cpuS(process.pid) || 0);
    const srv0 = args.serverPid ? cpuS(args.serverPid) : null;
    const cli0 = cpuSum();
    const mach0 = machineCpuS();
    const startNs = monoNs();
    const start = Date.now();
    let stalls = 0;
    for (let k = 0; k < ph.msgs; k++) {
      const seq = ph.base + k;
      if (ph.rate === null) {
        if (args.window > 0 && k >= args.window) {
          const gate = seq - args.window;
          let since = Date.now();
          while (doneProcs[gate] < activeKids()) {
            await waitPoke(50);
            if (Date.now() - since > args.stallMs) {
              stalls++;
              since = Date.now();
              break;
            }
          }
        } else if (k % 16 === 15) {
          await sleep(0); // open loop: let the socket write
        }
      } else {
        await sleep(start + (k * 1000) / ph.rate - Date.now());
      }
      pub.emit('pub', args.room, payload(seq, args.size));
    }
    const sentS = (Date.now() - start) / 1000;
    let last = sumDelivered(pi);
    let lastChange = Date.now();
    for (;;) {
      const d = sumDelivered(pi);
      if (d >= expected) break;
      if (d !== last) {
        last = d;
        lastChange = Date.now();
      } else if (Date.now() - lastChange > args.idleMs) break;
      await sleep(10);
    }
    const srv1 = args.serverPid ? cpuS(args.serverPid) : null;
    const cli1 = cpuSum();
    const mach1 = machineCpuS();
    const wallS = (monoNs() - startNs) / 1e9;
    const delivered = sumDelivered(pi);
    const lastNs = Math.max(...kids.map((k) => k.lastRecv[pi] || 0));
    const spanS = Math.max(0, lastNs - startNs) / 1e9;
    outPhases.push({
      phase: ph.name,
      rate_msgs_per_s: ph.rate,
      msgs: ph.msgs,
      subscribers: perMsg,
      expected,
      delivered,
      lost: Math.max(0, expected - delivered),
      send_s: r2(sentS),
      span_s: Math.round(spanS * 1000) / 1000,
      deliveries_per_s: spanS > 0 ? Math.round(delivered / spanS) : 0,
      stalls,
      server_cpu_pct: srv0 !== null && srv1 !== null ? r2((100 * (srv1 - srv0)) / wallS) : null,
      client_cpu_pct: r2((100 * (cli1 - cli0)) / wallS),
      machine_cpu_pct: mach0 && mach1 ? r2((100 * (mach1.busy - mach0.busy)) / wallS) : null,
      steal_pct: mach0 && mach1 ? r2((100 * (mach1.steal - mach0.steal)) / wallS) : null,
    });
    await sleep(300);
  }
  const rssEnd = args.serverPid ? statusKib(args.serverPid, 'VmRSS:') : null;
  const rssHwm = args.serverPid ? statusKib(args.serverPid, 'VmHWM:') : null;

  // stop, gather latencies
  stopping = true;
  for (const k of kids) k.child.send({ t: 'stop' });
  const t1 = Date.now();
  while (kids.some((k) => !k.result) && Date.now() - t1 < 20000) await waitPoke(100);
  let disconnects = 0;
  let connectErrors = 0;
  for (const k of kids) {
    if (!k.result) continue;
    disconnects += k.result.disconnects;
    connectErrors += k.result.connectErrors;
    if (k.result.firstError && !firstError) firstError = k.result.firstError;
  }
  for (const [pi, o] of outPhases.entries()) {
    const parts = kids.filter((k) => k.result).map((k) => k.result.lats[pi]);
    const n = parts.reduce((a, p) => a + p.length, 0);
    const all = new Float64Array(n);
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    all.sort();
    o.p50_ms = percentile(all, 0.5);
    o.p99_ms = percentile(all, 0.99);
    o.p999_ms = percentile(all, 0.999);
    o.max_ms = n ? r2(all[n - 1] / 1000) : null;
  }
  pub.close();
  const out = {
    server: 'socketio',
    label: args.label,
    subs: args.subs,
    procs: args.procs,
    joined,
    connect_errors: connectErrors,
    disconnects,
    send_errors: 0,
    first_error: firstError,
    aborted: null,
    publisher_note: publisherNote,
    connect_s: r2(connectS),
    payload_bytes: args.size,
    window: args.window,
    rss_before_kib: rssBefore,
    rss_idle_kib: rssIdle,
    rss_per_conn_kib: rssBefore !== null && rssIdle !== null && joined > 0 ? r2((rssIdle - rssBefore) / joined) : null,
    rss_end_kib: rssEnd,
    rss_hwm_kib: rssHwm,
    phases: outPhases,
  };
  console.log(JSON.stringify(out));
  for (const k of kids) k.child.kill('SIGKILL');
  process.exit(0);
}

main().catch((e) => {
  console.error(e && e.stack ? e.stack : e);
  process.exit(1);
});
