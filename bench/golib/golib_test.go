package golib

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"

	"github.com/gobwas/ws"
)

// serverFrame builds an unmasked server frame.
func serverFrame(fin bool, op ws.OpCode, p []byte) []byte {
	b, err := ws.CompileFrame(ws.NewFrame(op, fin, p))
	if err != nil {
		panic(err)
	}
	return b
}

// pipeConn: a Conn with a small read buffer on one end of a pipe; the other end's writes come
// from in, and what the Conn writes is collected into *sent once the pipe closes.
func pipeConn(t *testing.T, bufSize int, in []byte) (*Conn, chan []byte) {
	t.Helper()
	cli, srv := net.Pipe()
	sent := make(chan []byte, 1)
	go func() {
		var got bytes.Buffer
		done := make(chan struct{})
		go func() { io.Copy(&got, srv); close(done) }()
		// write in pieces, so frames arrive split across reads
		for len(in) > 0 {
			n := min(7, len(in))
			if _, err := srv.Write(in[:n]); err != nil {
				break
			}
			in = in[n:]
		}
		srv.Close()
		<-done
		sent <- got.Bytes()
	}()
	return &Conn{c: cli, buf: make([]byte, bufSize)}, sent
}

func TestNextFrames(t *testing.T) {
	big := bytes.Repeat([]byte("y"), 300) // 126-length header, bigger than the buffer
	var in []byte
	in = append(in, serverFrame(true, ws.OpText, []byte("hello"))...)
	in = append(in, serverFrame(true, ws.OpPing, []byte("pp"))...)
	in = append(in, serverFrame(true, ws.OpText, big)...)
	in = append(in, serverFrame(false, ws.OpText, []byte("ab"))...)
	in = append(in, serverFrame(true, ws.OpContinuation, []byte("cd"))...)
	in = append(in, serverFrame(true, ws.OpPong, nil)...)
	cl := make([]byte, 2, 6)
	binary.BigEndian.PutUint16(cl, 1001)
	in = append(in, serverFrame(true, ws.OpClose, append(cl, "bye"...))...)
	wc, sent := pipeConn(t, 64, in)
	for _, want := range []string{"hello", string(big), "abcd"} {
		got, err := wc.Next()
		if err != nil || string(got) != want {
			t.Fatalf("Next = %q, %v; want %q", got, err, want)
		}
		if wc.Now() <= 0 {
			t.Fatalf("Now not stamped")
		}
	}
	_, err := wc.Next()
	if !errors.Is(err, errClosedByServer) || !strings.Contains(err.Error(), `code 1001, "bye"`) {
		t.Fatalf("close: %v", err)
	}
	wc.Close()
	// the ping was answered with a masked pong carrying its payload
	out := <-sent
	f, err := ws.ReadFrame(bytes.NewReader(out))
	if err != nil || f.Header.OpCode != ws.OpPong || !f.Header.Masked {
		t.Fatalf("pong: %+v, %v", f.Header, err)
	}
	ws.Cipher(f.Payload, f.Header.Mask, 0)
	if string(f.Payload) != "pp" {
		t.Fatalf("pong payload %q", f.Payload)
	}
}

func TestNextLineGrows(t *testing.T) {
	long := strings.Repeat("z", 5000)
	wc, _ := pipeConn(t, 64, []byte("OK HELLO r:a\n"+long+"\nlast\n"))
	defer wc.Close()
	for _, want := range []string{"OK HELLO r:a", long, "last"} {
		got, err := wc.NextLine()
		if err != nil || string(got) != want {
			t.Fatalf("NextLine = %.20q (%d), %v; want %.20q", got, len(got), err, want)
		}
	}
	if _, err := wc.NextLine(); err == nil {
		t.Fatal("want an error at EOF")
	}
}

func TestAwaitReply(t *testing.T) {
	in := serverFrame(true, ws.OpText, []byte("{}\n{\"push\":1}\n{\"id\":2,\"ok\":true}"))
	wc, _ := pipeConn(t, 4096, in)
	defer wc.Close()
	pings := 0
	v, err := AwaitReply(wc, 2, func(line []byte) (bool, error) {
		if string(line) == "{}" {
			pings++
			return true, nil
		}
		return false, nil
	})
	if err != nil || v["ok"] != true || pings != 1 {
		t.Fatalf("AwaitReply = %v, %v (pings %d)", v, err, pings)
	}
}

func TestStamp(t *testing.T) {
	b := AppendPadded([]byte("#"), 42, 10)
	b = AppendStamp(b, 64)
	if len(b) != 64 || string(b[:12]) != "#0000000042." || b[32] != '.' || b[63] != 'x' {
		t.Fatalf("payload %q", b)
	}
	if v, ok := Digits(b[1:11]); !ok || v != 42 {
		t.Fatalf("Digits = %d, %v", v, ok)
	}
	if _, ok := Digits([]byte("12a")); ok {
		t.Fatal("Digits accepted a letter")
	}
}

func TestProc(t *testing.T) {
	if _, ok := ProcCPUSeconds(0); !ok {
		t.Fatal("ProcCPUSeconds(self)")
	}
	if _, ok := MachineJiffies(); !ok {
		t.Fatal("MachineJiffies")
	}
	if v, ok := ProcStatusKiB(os.Getpid(), "VmRSS:"); !ok || v <= 0 {
		t.Fatalf("ProcStatusKiB(self) = %d, %v", v, ok)
	}
	if _, ok := ProcStatusKiB(0, "VmRSS:"); ok {
		t.Fatal("pid 0 must be refused")
	}
}
