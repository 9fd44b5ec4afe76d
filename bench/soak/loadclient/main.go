// soak-loadclient: the load client of bench/soak. Many WebSocket clients (/ws/rooms JSON) in many
// rooms, spread over one or more tether nodes, with publishers at a steady total rate for a fixed
// time; it measures delivered/s, publish → receipt latency, lost / duplicated / out-of-order
// deliveries, and samples every node's RSS and CPU from /proc once a second.
//
// Layout: client i (name c<i>) is in room i % ROOMS (soak<r>) on node i % NODES, so each room's
// members are spread round-robin over the nodes. Its rank in the room is i / ROOMS; the first
// PUBS_PER_ROOM ranks publish (they are members too and get the other publishers' messages; tether
// does not echo a message to its sender). Rank 0 creates the room (`new`), the others `hello`
// into it (retried while another node has not learnt the room yet).
//
// Expected deliveries (docs/protocol/rooms.md §11): every message reaches every other member of
// its room, on every node (local members directly, the others through Redis), in the order its
// publisher sent it. So for each subscriber and each other publisher of its room, expected =
// what that publisher sent; lost = expected − received (never negative), duplicates = received −
// expected, out of order = a publisher's sequence number not above the last one seen from it.
//
// Payload (exactly --size bytes, ASCII, the `text` of a send): '#' + 5-digit publisher (its
// client index) + '.' + 10-digit sequence + '.' + 20-digit send stamp (ns of Go's monotonic clock
// since this process started; publishers and subscribers share the process, so the clock) + '.'
// + 'x' padding. The receive time is taken once per read(2) that returned data.
//
// Latency histograms are log-scaled (bucket b holds ln(1+µs)·40 ∈ [b, b+1): 2.5 % wide), so
// percentiles are exact to 2.5 %. Every second the sampler records deliveries, that second's
// p50/p99 and the RSS and CPU of every --procs process.
//
// WebSocket: bench/golib's Conn (shared with bench/fanout/loadclient): github.com/gobwas/ws for the
// handshake and the masked client frames; server frames are parsed in place from a read buffer per
// connection.
//
// Output: one JSON line on stdout, progress on stderr.
package main

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"tether-bench/golib"
)

var (
	flAddrs     = flag.String("addrs", "127.0.0.1:8700", "comma-separated HTTP addresses of the nodes (127.0.0.1:PORT)")
	flProcs     = flag.String("procs", "", "comma-separated NAME:PID of processes to sample (RSS, CPU) every second, e.g. node1:123,redis:456")
	flMode      = flag.String("mode", "", "the output's mode field (e.g. one-node, three-nodes)")
	flClients   = flag.Int("clients", 5000, "WebSocket clients in all")
	flRooms     = flag.Int("rooms", 50, "rooms (client i is in room i % rooms)")
	flPubs      = flag.Int("pubs-per-room", 2, "publishers per room (the first ranks of each room)")
	flRate      = flag.Float64("rate", 500, "messages per second in all, over all publishers")
	flDuration  = flag.Float64("duration", 600, "seconds of publishing")
	flWarmup    = flag.Float64("warmup", 60, "seconds at the start of publishing left out of the steady-state figures")
	flSize      = flag.Int("size", 64, "payload bytes (>= 40)")
	flConnConc  = flag.Int("connect-concurrency", 64, "concurrent handshakes while connecting")
	flConnWait  = flag.Int("connect-timeout-s", 300, "give up waiting for the joins after this long")
	flDrainIdle = flag.Float64("drain-idle-s", 5, "after publishing: stop waiting when nothing arrived for this long")
	flDrainMax  = flag.Float64("drain-max-s", 60, "after publishing: wait at most this long for the rest")
	flSettle    = flag.Float64("settle-s", 2, "pause between the last join and the first message")
)

// ---- latency histogram ----

const buckets = 800
const perE = 40.0

type hist [buckets]atomic.Uint64

func bucketOf(us int64) int {
	if us < 0 {
		us = 0
	}
	b := int(math.Log1p(float64(us)) * perE)
	return min(b, buckets-1)
}

func (h *hist) add(b int) { h[b].Add(1) }

// snapshot copies (and with reset, empties) the histogram.
func (h *hist) snapshot(reset bool) []uint64 {
	out := make([]uint64, buckets)
	for i := range h {
		if reset {
			out[i] = h[i].Swap(0)
		} else {
			out[i] = h[i].Load()
		}
	}
	return out
}

// quantile of a histogram snapshot, in ms (the bucket's geometric middle); nil when empty.
func quantile(c []uint64, q float64) any {
	var n uint64
	for _, v := range c {
		n += v
	}
	if n == 0 {
		return nil
	}
	want := uint64(math.Ceil(q * float64(n)))
	want = max(want, 1)
	var acc uint64
	for i, v := range c {
		acc += v
		if acc >= want {
			return r3(math.Expm1((float64(i)+0.5)/perE) / 1000)
		}
	}
	return nil
}

func maxOf(c []uint64) any {
	for i := len(c) - 1; i >= 0; i-- {
		if c[i] > 0 {
			return r3(math.Expm1(float64(i+1)/perE) / 1000)
		}
	}
	return nil
}

func r3(x float64) float64 { return math.Round(x*1000) / 1000 }
func r1(x float64) float64 { return math.Round(x*10) / 10 }

// ---- shared state ----

type shared struct {
	joined        atomic.Int32
	connectErrors atomic.Int32
	disconnects   atomic.Int32
	sendErrors    atomic.Int64
	badStamps     atomic.Int64
	received      atomic.Int64 // deliveries in all
	interval      hist         // since the last sample
	all           hist         // the whole publish phase and the drain
	steady        hist         // receipts between warm-up and the end of publishing
	steadyCount   atomic.Int64
	steadyFrom    atomic.Int64 // mono ns; math.MaxInt64 until publishing starts
	steadyTo      atomic.Int64
	stopping      atomic.Bool
	mu            sync.Mutex
	firstError    string
}

func (sh *shared) recordError(e string) {
	sh.mu.Lock()
	if sh.firstError == "" {
		sh.firstError = e
	}
	sh.mu.Unlock()
}

// ---- WebSocket connection ----

func dial(addr string) (*golib.Conn, error) {
	return golib.Dial("ws://"+addr+"/ws/rooms", 16*1024)
}

// request sends one command and waits for its reply (id 0); other frames before it are skipped.
func request(wc *golib.Conn, req string) (map[string]any, error) {
	if err := wc.WriteText([]byte(req)); err != nil {
		return nil, err
	}
	return golib.AwaitReply(wc, 0, nil)
}

// join registers client `name` in `room`: `new` for the room's creator, else `hello`, retried
// while the node does not know the room yet (a room created on another node reaches this one
// through Redis).
func join(wc *golib.Conn, room, name string, create bool, deadline time.Time) error {
	cmd := "hello"
	if create {
		cmd = "new"
	}
	for {
		v, err := request(wc, fmt.Sprintf(`{"id":0,"cmd":%q,"room":%q,"client":%q}`, cmd, room, name))
		if err != nil {
			return fmt.Errorf("%s %s:%s: %w", cmd, room, name, err)
		}
		if v["ok"] == true {
			return nil
		}
		code, _ := v["error"].(string)
		switch {
		case create && code == "ROOM_EXISTS":
			cmd = "hello"
			continue
		case code == "NO_SUCH_ROOM" && time.Now().Before(deadline):
			time.Sleep(100 * time.Millisecond)
			continue
		}
		b, _ := json.Marshal(v)
		return fmt.Errorf("%s %s:%s: %s", cmd, room, name, b)
	}
}

// ---- payload ----

func payload(pub, seq, size int) []byte {
	b := make([]byte, 0, size)
	b = append(b, '#')
	b = golib.AppendPadded(b, int64(pub), 5)
	b = append(b, '.')
	b = golib.AppendPadded(b, int64(seq), 10)
	return golib.AppendStamp(b, size)
}

// parseStamp: (publisher, sequence, send ns) of a message push.
func parseStamp(b []byte) (int, int64, int64, bool) {
	i := bytes.IndexByte(b, '#')
	if i < 0 || len(b) < i+39 {
		return 0, 0, 0, false
	}
	d := b[i+1 : i+39]
	if d[5] != '.' || d[16] != '.' || d[37] != '.' {
		return 0, 0, 0, false
	}
	pub, ok1 := golib.Digits(d[:5])
	seq, ok2 := golib.Digits(d[6:16])
	ns, ok3 := golib.Digits(d[17:37])
	return int(pub), seq, ns, ok1 && ok2 && ok3
}

// ---- one client ----

type client struct {
	i, room, rank int
	name, addr    string
	conn          *golib.Conn
	// per publisher rank of the room: deliveries and the last sequence number seen
	recv       []int64
	last       []int64
	outOfOrder int64
	ok         bool
}

func (c *client) read(sh *shared) {
	for {
		msg, err := c.conn.Next()
		if err != nil {
			if !sh.stopping.Load() {
				sh.recordError(fmt.Sprintf("%s: %v", c.name, err))
				sh.disconnects.Add(1)
			}
			return
		}
		pub, seq, sent, ok := parseStamp(msg)
		if !ok {
			if bytes.Contains(msg, []byte(`"ok":false`)) {
				sh.sendErrors.Add(1)
				sh.recordError(fmt.Sprintf("%s got: %s", c.name, msg))
			}
			continue
		}
		rank := pub / *flRooms
		if pub%*flRooms != c.room || rank >= len(c.recv) || rank == c.rank {
			sh.badStamps.Add(1)
			continue
		}
		now := c.conn.Now()
		b := bucketOf((now - sent) / 1000)
		sh.interval.add(b)
		sh.all.add(b)
		if now >= sh.steadyFrom.Load() && now < sh.steadyTo.Load() {
			sh.steady.add(b)
			sh.steadyCount.Add(1)
		}
		sh.received.Add(1)
		c.recv[rank]++
		if seq <= c.last[rank] {
			c.outOfOrder++
		} else {
			c.last[rank] = seq
		}
	}
}

// publish sends messages on an absolute schedule from `start` until `end`: message k at
// start + (k + phase) / rate; returns how many it sent.
func (c *client) publish(sh *shared, rate float64, phase float64, start, end time.Time) int64 {
	var k int64
	for {
		at := start.Add(time.Duration((float64(k) + phase) / rate * 1e9))
		if !at.Before(end) {
			return k
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		pl := payload(c.i, int(k+1), *flSize)
		req := fmt.Appendf(nil, `{"id":1,"cmd":"send","room":"soak%d","text":"%s"}`, c.room, pl)
		if err := c.conn.WriteText(req); err != nil {
			sh.recordError(fmt.Sprintf("%s: send: %v", c.name, err))
			return k
		}
		k++
	}
}

// ---- /proc ----

// machineBusy: busy and total jiffies of the whole machine (/proc/stat's cpu line).
func machineBusy() (float64, float64) {
	j, ok := golib.MachineJiffies()
	if !ok {
		return 0, 0
	}
	var busy, total float64
	for i, v := range j[:8] {
		total += v
		if i != 3 && i != 4 { // idle, iowait
			busy += v
		}
	}
	return busy, total
}

type proc struct {
	name string
	pid  int
}

type sample struct {
	T         float64            `json:"t"`
	Phase     string             `json:"phase"`
	Delivered int64              `json:"delivered"`
	P50       any                `json:"p50_ms"`
	P99       any                `json:"p99_ms"`
	RSS       map[string]int64   `json:"rss_kib"`
	CPU       map[string]float64 `json:"cpu_pct"`
	Machine   float64            `json:"machine_cpu_pct"`
	ns        int64
}

type sampler struct {
	sh      *shared
	procs   []proc
	phase   atomic.Value // string
	pubNs   atomic.Int64 // mono ns of the first message (0 before)
	mu      sync.Mutex
	samples []sample
	stop    chan struct{}
	done    chan struct{}
}

func (s *sampler) run(ncpu int) {
	defer close(s.done)
	lastCPU := map[string]float64{}
	for _, p := range s.procs {
		lastCPU[p.name], _ = golib.ProcCPUSeconds(p.pid)
	}
	lastRecv := s.sh.received.Load()
	mb, mt := machineBusy()
	last := golib.MonoNs()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
		}
		now := golib.MonoNs()
		dt := float64(now-last) / 1e9
		last = now
		recv := s.sh.received.Load()
		h := s.sh.interval.snapshot(true)
		smp := sample{
			Phase:     s.phase.Load().(string),
			Delivered: recv - lastRecv,
			P50:       quantile(h, 0.5),
			P99:       quantile(h, 0.99),
			RSS:       map[string]int64{},
			CPU:       map[string]float64{},
		}
		lastRecv = recv
		smp.ns = now // t (seconds from the first message) is filled in once that is known
		for _, p := range s.procs {
			if v, ok := golib.ProcStatusKiB(p.pid, "VmRSS:"); ok {
				smp.RSS[p.name] = v
			}
			if v, ok := golib.ProcCPUSeconds(p.pid); ok {
				smp.CPU[p.name] = r1(100 * (v - lastCPU[p.name]) / dt)
				lastCPU[p.name] = v
			}
		}
		b, t := machineBusy()
		if t > mt {
			smp.Machine = r1(100 * float64(ncpu) * (b - mb) / (t - mt))
		}
		mb, mt = b, t
		s.mu.Lock()
		s.samples = append(s.samples, smp)
		s.mu.Unlock()
	}
}

// ---- main ----

func main() {
	flag.Parse()
	addrs := strings.Split(*flAddrs, ",")
	for _, a := range addrs {
		if h, _, err := net.SplitHostPort(a); err != nil || h != "127.0.0.1" {
			fail("--addrs: each must be 127.0.0.1:PORT")
		}
	}
	var procs []proc
	if *flProcs != "" {
		for _, spec := range strings.Split(*flProcs, ",") {
			n, p, ok := strings.Cut(spec, ":")
			pid, err := strconv.Atoi(p)
			if !ok || err != nil || pid <= 0 {
				fail("--procs: NAME:PID,...")
			}
			procs = append(procs, proc{n, pid})
		}
	}
	if *flSize < 40 {
		fail("--size must be at least 40")
	}
	if *flRooms < 1 || *flClients < *flRooms || *flPubs < 1 || *flPubs*(*flRooms) > *flClients || *flClients > 99999 {
		fail("need 1 <= rooms <= clients <= 99999 and 1 <= pubs-per-room * rooms <= clients")
	}
	if *flRate <= 0 || *flDuration <= 0 || *flWarmup < 0 || *flWarmup >= *flDuration {
		fail("need rate > 0, duration > 0, 0 <= warmup < duration")
	}
	debug.SetGCPercent(400)
	ncpu := 1
	if data, err := os.ReadFile("/proc/stat"); err == nil {
		ncpu = max(1, strings.Count(string(data), "\ncpu"))
	}

	sh := &shared{}
	sh.steadyFrom.Store(math.MaxInt64)
	sh.steadyTo.Store(math.MaxInt64)
	smp := &sampler{sh: sh, procs: procs, stop: make(chan struct{}), done: make(chan struct{})}
	smp.phase.Store("join")
	go smp.run(ncpu)

	// ---- connect and join: the rooms' creators first, then everyone else ----
	clients := make([]*client, *flClients)
	for i := range clients {
		r, rank := i%*flRooms, i / *flRooms
		npub := *flPubs
		clients[i] = &client{
			i: i, room: r, rank: rank, name: fmt.Sprintf("c%05d", i), addr: addrs[i%len(addrs)],
			recv: make([]int64, npub), last: make([]int64, npub),
		}
	}
	start := time.Now()
	deadline := start.Add(time.Duration(*flConnWait) * time.Second)
	connect := func(cs []*client) {
		sem := make(chan struct{}, max(1, *flConnConc))
		var wg sync.WaitGroup
		for _, c := range cs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				wc, err := dial(c.addr)
				if err == nil {
					err = join(wc, fmt.Sprintf("soak%d", c.room), c.name, c.rank == 0, deadline)
					if err != nil {
						wc.Close()
					}
				}
				if err != nil {
					sh.connectErrors.Add(1)
					sh.recordError(err.Error())
					return
				}
				c.conn = wc
				c.ok = true
				sh.joined.Add(1)
			}()
		}
		wg.Wait()
	}
	connect(clients[:*flRooms])
	connect(clients[*flRooms:])
	connectS := time.Since(start).Seconds()
	joined := int(sh.joined.Load())
	logf("joined %d/%d in %.1f s on %d node(s) (connect errors %d)", joined, *flClients, connectS, len(addrs), sh.connectErrors.Load())
	var readers sync.WaitGroup
	for _, c := range clients {
		if c.ok {
			readers.Add(1)
			go func() { defer readers.Done(); c.read(sh) }()
		}
	}
	time.Sleep(time.Duration(*flSettle * 1e9))

	// ---- publish ----
	var pubs []*client
	for _, c := range clients {
		if c.ok && c.rank < *flPubs {
			pubs = append(pubs, c)
		}
	}
	sent := make([]int64, len(clients))
	var sentAll int64
	var publishS, drainS float64
	if len(pubs) > 0 {
		perPub := *flRate / float64(len(pubs))
		pubStart := time.Now().Add(100 * time.Millisecond)
		end := pubStart.Add(time.Duration(*flDuration * 1e9))
		p0 := golib.MonoNs() + int64(100*time.Millisecond)
		sh.steadyFrom.Store(p0 + int64(*flWarmup*1e9))
		sh.steadyTo.Store(p0 + int64(*flDuration*1e9))
		smp.pubNs.Store(p0)
		smp.phase.Store("publish")
		logf("publishing %.0f msgs/s from %d publishers (%.3g msgs/s each) for %.0f s", *flRate, len(pubs), perPub, *flDuration)
		var wg sync.WaitGroup
		for k, c := range pubs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sent[c.i] = c.publish(sh, perPub, float64(k)/float64(len(pubs)), pubStart, end)
			}()
		}
		wg.Wait()
		publishS = time.Since(pubStart).Seconds()
		smp.phase.Store("drain")
		for _, n := range sent {
			sentAll += n
		}
	}

	// ---- expected deliveries, then wait for them ----
	var expected int64
	members := make([]int64, *flRooms) // joined members per room
	for _, c := range clients {
		if c.ok {
			members[c.room]++
		}
	}
	for _, p := range pubs {
		expected += sent[p.i] * (members[p.room] - 1)
	}
	drainStart := time.Now()
	lastN, lastChange := sh.received.Load(), time.Now()
	for {
		n := sh.received.Load()
		if n >= expected || time.Since(drainStart).Seconds() > *flDrainMax {
			break
		}
		if n != lastN {
			lastN, lastChange = n, time.Now()
		} else if time.Since(lastChange).Seconds() > *flDrainIdle {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	drainS = time.Since(drainStart).Seconds()
	time.Sleep(1100 * time.Millisecond) // one more sample after the drain
	close(smp.stop)
	<-smp.done
	p0 := smp.pubNs.Load()
	if p0 == 0 {
		p0 = golib.MonoNs()
	}
	for i := range smp.samples {
		smp.samples[i].T = r1(float64(smp.samples[i].ns-p0) / 1e9)
	}
	sh.stopping.Store(true)
	for _, c := range clients {
		if c.ok {
			c.conn.Close()
		}
	}
	readers.Wait()

	// ---- per subscriber, per publisher: lost, duplicates, out of order ----
	var lost, dups, ooo, received int64
	rankOf := func(p *client) int { return p.rank }
	for _, c := range clients {
		if !c.ok {
			continue
		}
		for _, p := range pubs {
			if p.room != c.room || p.i == c.i {
				continue
			}
			got := c.recv[rankOf(p)]
			received += got
			if d := sent[p.i] - got; d > 0 {
				lost += d
			} else {
				dups += -d
			}
		}
		ooo += c.outOfOrder
	}
	steady := sh.steady.snapshot(false)
	all := sh.all.snapshot(false)
	steadyS := *flDuration - *flWarmup
	var firstError any
	sh.mu.Lock()
	if sh.firstError != "" {
		firstError = sh.firstError
	}
	sh.mu.Unlock()
	var procNames []string
	for _, p := range procs {
		procNames = append(procNames, p.name)
	}
	out := map[string]any{
		"mode":               *flMode,
		"nodes":              len(addrs),
		"procs":              procNames,
		"clients":            *flClients,
		"joined":             joined,
		"rooms":              *flRooms,
		"pubs_per_room":      *flPubs,
		"publishers":         len(pubs),
		"rate_msgs_per_s":    *flRate,
		"duration_s":         *flDuration,
		"warmup_s":           *flWarmup,
		"payload_bytes":      *flSize,
		"connect_s":          r1(connectS),
		"publish_s":          r3(publishS),
		"drain_s":            r3(drainS),
		"sent":               sentAll,
		"expected":           expected,
		"received":           received,
		"lost":               lost,
		"duplicates":         dups,
		"out_of_order":       ooo,
		"disconnects":        sh.disconnects.Load(),
		"connect_errors":     sh.connectErrors.Load(),
		"send_errors":        sh.sendErrors.Load(),
		"bad_stamps":         sh.badStamps.Load(),
		"first_error":        firstError,
		"delivered_per_s":    math.Round(float64(sh.steadyCount.Load()) / steadyS),
		"offered_per_s":      math.Round(float64(expected) / *flDuration),
		"p50_ms":             quantile(steady, 0.5),
		"p99_ms":             quantile(steady, 0.99),
		"p999_ms":            quantile(steady, 0.999),
		"max_ms":             maxOf(steady),
		"all_p50_ms":         quantile(all, 0.5),
		"all_p99_ms":         quantile(all, 0.99),
		"all_max_ms":         maxOf(all),
		"latency_resolution": "2.5 %",
		"series":             smp.samples,
	}
	logf("sent %d, expected %d, received %d: lost %d, duplicates %d, out of order %d; steady %v/s, p50 %v ms, p99 %v ms",
		sentAll, expected, received, lost, dups, ooo, out["delivered_per_s"], out["p50_ms"], out["p99_ms"])
	golib.PrintJSONLine(out)
}

func logf(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "[soak-loadclient %s] %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, a...))
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "soak-loadclient:", msg)
	os.Exit(2)
}
