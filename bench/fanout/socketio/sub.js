'use strict';
// Socket.IO subscriber process (forked by bench.js): opens `count` sockets, joins them to the
// room, records the latency of every `msg` from the CLOCK_MONOTONIC stamp in its payload, and
// tells the parent when a message reached all of its live sockets (for the publisher's window).
const { io } = require('socket.io-client');

let cfg = null;
let alive = 0;
let disconnects = 0;
let connectErrors = 0;
let firstError = null;
const sockets = [];
let counts; // deliveries per seq
let doneSent; // per seq: already reported to the parent
let phaseOf; // seq -> phase index
let lats; // per phase: array of µs
let delivered; // per phase
let lastRecv; // per phase, ns (Number)
let dirty = false;

function onMsg(p) {
  const now = Number(process.hrtime.bigint());
  if (typeof p !== 'string' || p.charCodeAt(0) !== 35 /* # */) return;
  const seq = Number(p.substring(1, 11));
  const sent = Number(p.substring(12, 32));
  if (!(seq >= 0 && seq < counts.length)) return;
  const ph = phaseOf[seq];
  lats[ph].push((now - sent) / 1000);
  delivered[ph]++;
  if (now > lastRecv[ph]) lastRecv[ph] = now;
  dirty = true;
  const c = ++counts[seq];
  if (c >= alive && !doneSent[seq]) {
    doneSent[seq] = 1;
    process.send({ t: 'done', seq });
  }
}

function connectOne(i) {
  return new Promise((resolve) => {
    const s = io(cfg.url, {
      transports: ['websocket'],
      forceNew: true,
      reconnection: false,
      timeout: 30000,
    });
    let joined = false;
    s.on('connect', () => {
      s.emit('join', cfg.room, () => {
        joined = true;
        alive++;
        resolve(true);
      });
    });
    s.on('msg', onMsg);
    s.on('connect_error', (e) => {
      connectErrors++;
      if (!firstError) firstError = `sub${i}: connect_error ${e && e.message}`;
      resolve(false);
    });
    s.on('disconnect', (reason) => {
      if (!joined) return;
      alive--;
      disconnects++;
      if (!firstError && !cfg.stopping) firstError = `sub${i}: disconnect ${reason}`;
      process.send({ t: 'disc' });
    });
    sockets.push(s);
  });
}

async function start() {
  const total = cfg.phases.reduce((a, p) => a + p.msgs, 0);
  counts = new Uint32Array(total);
  doneSent = new Uint8Array(total);
  phaseOf = new Uint8Array(total);
  cfg.phases.forEach((p, i) => phaseOf.fill(i, p.base, p.base + p.msgs));
  lats = cfg.phases.map(() => []);
  delivered = cfg.phases.map(() => 0);
  lastRecv = cfg.phases.map(() => 0);
  let next = 0;
  const worker = async () => {
    while (next < cfg.count) {
      const i = cfg.from + next++;
      await connectOne(i);
    }
  };
  await Promise.all(Array.from({ length: cfg.concurrency }, worker));
  process.send({ t: 'joined', alive, connectErrors, firstError });
  setInterval(() => {
    if (!dirty) return;
    dirty = false;
    process.send({ t: 'prog', delivered, lastRecv, alive });
  }, 20).unref();
}

process.on('message', (m) => {
  if (m.t === 'start') {
    cfg = m.cfg;
    start().catch((e) => {
      process.send({ t: 'fatal', error: String(e && e.stack) });
    });
  } else if (m.t === 'stop') {
    cfg.stopping = true;
    process.send(
      {
        t: 'result',
        lats: lats.map((a) => Float64Array.from(a)),
        delivered,
        lastRecv,
        alive,
        disconnects,
        connectErrors,
        firstError,
      },
      () => {
        for (const s of sockets) s.close();
        setTimeout(() => process.exit(0), 200);
      },
    );
  }
});
process.on('disconnect', () => process.exit(0));
