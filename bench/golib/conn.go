// Package golib holds what bench/fanout/loadclient and bench/soak/loadclient share: a light
// WebSocket client connection (gobwas/ws for the handshake and the masked client frames, server
// frames parsed in place from one read buffer per connection), the monotonic clock their payload
// stamps and receive times use, payload digit helpers, /proc readers and the JSON output line.
package golib

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

var t0 = time.Now()

// MonoNs is nanoseconds of Go's monotonic clock since the process started: the one clock of send
// stamps and receive times, as publishers and subscribers live in one process.
func MonoNs() int64 { return int64(time.Since(t0)) }

// Conn is one client connection whose server frames (or lines) are parsed in place from a read
// buffer, so a load client costs the server's side little more than the reads.
type Conn struct {
	c    net.Conn
	buf  []byte
	r, w int   // unread bytes are buf[r:w]
	now  int64 // MonoNs() just after the last read that returned data
	wmu  sync.Mutex
	frag []byte
}

var errClosedByServer = errors.New("close frame from server")

// Dial opens a WebSocket connection to url (ws://host:port/path) with a bufSize-byte read buffer
// (it grows for bigger frames); bytes that arrived with the handshake response are kept.
func Dial(url string, bufSize int) (*Conn, error) {
	d := ws.Dialer{Timeout: 30 * time.Second}
	conn, br, _, err := d.Dial(context.Background(), url)
	if err != nil {
		return nil, err
	}
	wc := &Conn{c: conn, buf: make([]byte, bufSize)}
	if br != nil { // bytes the handshake reader already took past the response
		n, _ := io.ReadFull(br, wc.buf[:br.Buffered()])
		wc.w = n
		wc.now = MonoNs()
		ws.PutReader(br)
	}
	return wc, nil
}

// DialTCP opens a plain TCP connection for a line protocol (read with NextLine, written with
// WriteLine), so line and WebSocket clients share one reader.
func DialTCP(addr string, bufSize int) (*Conn, error) {
	c, err := net.DialTimeout("tcp", addr, 30*time.Second)
	if err != nil {
		return nil, err
	}
	return &Conn{c: c, buf: make([]byte, bufSize)}, nil
}

// Close closes the connection; a reader blocked in Next or NextLine then returns an error.
func (wc *Conn) Close() error { return wc.c.Close() }

// SetReadDeadline bounds the reads of Next and NextLine, so a request cannot wait forever.
func (wc *Conn) SetReadDeadline(t time.Time) error { return wc.c.SetReadDeadline(t) }

// Now is MonoNs() just after the last read(2) that returned data: the receive time of every
// message in that read (in-batch parsing time is not counted as latency).
func (wc *Conn) Now() int64 { return wc.now }

func (wc *Conn) writeFrame(op ws.OpCode, p []byte) error {
	q := make([]byte, len(p))
	copy(q, p)
	b, err := ws.CompileFrame(ws.MaskFrameInPlace(ws.NewFrame(op, true, q)))
	if err != nil {
		return err
	}
	wc.wmu.Lock()
	defer wc.wmu.Unlock()
	_, err = wc.c.Write(b)
	return err
}

// WriteText sends p as one masked text frame in one write; safe to call from several goroutines
// (a reader answering pings and a publisher).
func (wc *Conn) WriteText(p []byte) error { return wc.writeFrame(ws.OpText, p) }

// WriteLine sends p + '\n' in one write, for a line protocol; safe from several goroutines.
func (wc *Conn) WriteLine(p []byte) error {
	q := make([]byte, 0, len(p)+1)
	q = append(append(q, p...), '\n')
	wc.wmu.Lock()
	defer wc.wmu.Unlock()
	_, err := wc.c.Write(q)
	return err
}

// fill reads once into the buffer after compacting it, and stamps the receive time.
func (wc *Conn) fill() error {
	if wc.r == wc.w {
		wc.r, wc.w = 0, 0
	} else if len(wc.buf)-wc.w < 4096 {
		wc.w = copy(wc.buf, wc.buf[wc.r:wc.w])
		wc.r = 0
	}
	n, err := wc.c.Read(wc.buf[wc.w:])
	if n > 0 {
		wc.w += n
		wc.now = MonoNs()
	}
	if err != nil && n == 0 {
		return err
	}
	return nil
}

// NextLine returns the next line without its '\n' (line protocol); valid until the next call.
func (wc *Conn) NextLine() ([]byte, error) {
	for {
		if i := bytes.IndexByte(wc.buf[wc.r:wc.w], '\n'); i >= 0 {
			line := wc.buf[wc.r : wc.r+i]
			wc.r += i + 1
			return line, nil
		}
		if wc.r == 0 && wc.w > 0 && len(wc.buf)-wc.w < 4096 { // a line longer than the buffer: grow it
			nb := make([]byte, 2*len(wc.buf))
			wc.w = copy(nb, wc.buf[:wc.w])
			wc.buf = nb
		}
		if err := wc.fill(); err != nil {
			return nil, err
		}
	}
}

// Next returns the next WebSocket data message (fragments joined); the slice is valid until the
// next call. Pings are answered, pongs skipped, a close frame ends the connection with an error.
func (wc *Conn) Next() ([]byte, error) {
	for {
		b := wc.buf[wc.r:wc.w]
		if len(b) >= 2 {
			fin := b[0]&0x80 != 0
			op := ws.OpCode(b[0] & 0x0f)
			masked := b[1]&0x80 != 0
			l := uint64(b[1] & 0x7f)
			h := 2
			ok := true
			switch l {
			case 126:
				if len(b) < 4 {
					ok = false
				} else {
					l = uint64(binary.BigEndian.Uint16(b[2:4]))
					h = 4
				}
			case 127:
				if len(b) < 10 {
					ok = false
				} else {
					l = binary.BigEndian.Uint64(b[2:10])
					h = 10
				}
			}
			if masked {
				h += 4
			}
			if ok && l > 1<<26 {
				return nil, fmt.Errorf("frame of %d bytes", l)
			}
			if ok && uint64(len(b)) >= uint64(h)+l {
				pl := b[h : h+int(l)]
				if masked {
					var m [4]byte
					copy(m[:], b[h-4:h])
					ws.Cipher(pl, m, 0)
				}
				wc.r += h + int(l)
				switch {
				case op == ws.OpPing:
					if err := wc.writeFrame(ws.OpPong, pl); err != nil {
						return nil, err
					}
					continue
				case op == ws.OpPong:
					continue
				case op == ws.OpClose:
					code := 0
					if len(pl) >= 2 {
						code = int(binary.BigEndian.Uint16(pl))
					}
					return nil, fmt.Errorf("%w (code %d, %q)", errClosedByServer, code, pl[min(2, len(pl)):])
				case op == ws.OpContinuation:
					wc.frag = append(wc.frag, pl...)
					if fin {
						return wc.frag, nil
					}
					continue
				case !fin:
					wc.frag = append(wc.frag[:0], pl...)
					continue
				default:
					return pl, nil
				}
			}
			// incomplete frame: make room for it
			if need := h + int(l); ok && need > len(wc.buf) {
				nb := make([]byte, need+4096)
				wc.w = copy(nb, b)
				wc.r = 0
				wc.buf = nb
			}
		}
		if err := wc.fill(); err != nil {
			return nil, err
		}
	}
}

// ForEachLine calls f on each '\n'-separated part of b, as Centrifugo's JSON protocol batches
// several messages into one frame.
func ForEachLine(b []byte, f func([]byte)) {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			f(b)
			return
		}
		f(b[:i])
		b = b[i+1:]
	}
}

// AwaitReply reads messages (60 s read deadline) until a JSON line whose "id" is id arrives,
// skipping the others, so a request's reply is found among pushes. hook, when not nil, sees each
// non-blank line first and returns true to consume it (e.g. to answer a Centrifugo ping).
func AwaitReply(wc *Conn, id int, hook func(line []byte) (bool, error)) (map[string]any, error) {
	_ = wc.c.SetReadDeadline(time.Now().Add(60 * time.Second))
	defer wc.c.SetReadDeadline(time.Time{})
	for {
		msg, err := wc.Next()
		if err != nil {
			return nil, err
		}
		var found map[string]any
		var herr error
		ForEachLine(msg, func(line []byte) {
			if found != nil || herr != nil || len(bytes.TrimSpace(line)) == 0 {
				return
			}
			if hook != nil {
				var done bool
				if done, herr = hook(line); done || herr != nil {
					return
				}
			}
			var v map[string]any
			if json.Unmarshal(line, &v) != nil {
				return
			}
			if x, ok := v["id"].(float64); ok && int(x) == id {
				found = v
			}
		})
		if herr != nil {
			return nil, herr
		}
		if found != nil {
			return found, nil
		}
	}
}
