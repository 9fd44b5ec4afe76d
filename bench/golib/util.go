package golib

import (
	"bufio"
	"encoding/json"
	"os"
	"strconv"
)

// AppendPadded appends v in decimal, zero-padded to width digits: payload fields have fixed
// offsets, so a receiver parses them without searching.
func AppendPadded(b []byte, v int64, width int) []byte {
	s := strconv.FormatInt(v, 10)
	for i := len(s); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, s...)
}

// AppendStamp appends '.', the 20-digit send stamp (MonoNs, taken now), '.' and 'x' padding up to
// size bytes in all: the common tail of both clients' payloads.
func AppendStamp(b []byte, size int) []byte {
	b = append(b, '.')
	b = AppendPadded(b, MonoNs(), 20)
	b = append(b, '.')
	for len(b) < size {
		b = append(b, 'x')
	}
	return b
}

// Digits parses d as an unsigned decimal (ASCII digits only), for the fixed-width payload fields.
func Digits(d []byte) (int64, bool) {
	var v int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + int64(c-'0')
	}
	return v, true
}

// PrintJSONLine writes v as one JSON line on stdout: the one result line a run's summarize.py
// reads.
func PrintJSONLine(v any) {
	enc, _ := json.Marshal(v)
	w := bufio.NewWriter(os.Stdout)
	w.Write(enc)
	w.WriteString("\n")
	w.Flush()
}
