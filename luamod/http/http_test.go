package http

import (
	"bufio"
	"fmt"
	"strings"
	"testing"
)

func TestFrameAndParseRequest(t *testing.T) {
	for _, c := range []struct {
		in, body string
		n        int
		keep     bool
	}{
		{"GET /a?b=1 HTTP/1.1\r\nHost: x\r\n\r\nGET", "", 32, true},
		{"POST /p HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabcNEXT", "abc", 61, false},
		{"POST /p HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n1;ext\r\nd\r\n0\r\nT: 1\r\n\r\nX", "abcd", 77, false},
		{"POST /p HTTP/1.1\r\nContent-Length: 3\r\n\r\nab", "", 0, false},
		{"POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab", "", 0, false},
	} {
		n, err := FrameRequest([]byte(c.in), 1<<20)
		if err != nil || n != c.n {
			t.Errorf("FrameRequest(%q) = %d, %v; want %d", c.in, n, err, c.n)
			continue
		}
		if n == 0 {
			continue
		}
		r, err := ParseRequest([]byte(c.in[:n]), 1<<20)
		if err != nil || string(r.Body) != c.body || r.KeepAlive != c.keep {
			t.Errorf("ParseRequest(%q) = %+v, %v", c.in[:n], r, err)
		}
	}
	if r, _ := ParseRequest([]byte("GET /a?b=1 HTTP/1.1\r\nX-A: 1\r\nx-a: 2\r\n\r\n"), 10); r.Path != "/a" || r.Query != "b=1" || r.Header["x-a"] != "1, 2" {
		t.Errorf("parsed %+v", r)
	}
	for _, bad := range []string{
		"GET /\r\n\r\n", "GET / HTTP/1.1\r\nno colon\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
		"GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", "GET / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n",
	} {
		n, err := FrameRequest([]byte(bad), 1<<20)
		if err != nil || n == 0 {
			t.Errorf("FrameRequest(%q) = %d, %v: a bad head is cut, for ParseRequest to refuse", bad, n, err)
			continue
		}
		if _, err := ParseRequest([]byte(bad[:n]), 1<<20); err == nil {
			t.Errorf("ParseRequest(%q) accepted it", bad)
		}
	}
	if _, err := FrameRequest([]byte("POST / HTTP/1.1\r\nContent-Length: 100\r\n\r\n"), 10); err == nil {
		t.Error("a body over the maximum was accepted")
	}
}

func TestReadResponse(t *testing.T) {
	in := "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhiHTTP/1.1 204 No Content\r\n\r\nHTTP/1.0 200 OK\r\n\r\nrest"
	br := bufio.NewReader(strings.NewReader(in))
	for _, want := range []string{"200 hi true", "204  true", "200 rest false"} {
		r, err := ReadResponse(br, "GET", 100)
		if err != nil {
			t.Fatal(err)
		}
		if got := fmt.Sprint(r.Status, " ", string(r.Body), " ", r.KeepAlive); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}

func TestWrite(t *testing.T) {
	got := string(WriteRequest("POST", "/x", "h:1", map[string]string{"content-type": "text/plain"}, []byte("ab")))
	if got != "POST /x HTTP/1.1\r\nHost: h:1\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nab" {
		t.Errorf("request %q", got)
	}
	got = string(WriteResponse(404, map[string]string{"content-length": "9"}, []byte("no"), false))
	if got != "HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno" {
		t.Errorf("response %q", got)
	}
	if BadField(map[string]string{"a": "b\r\nX: y"}) != "a" || BadField(map[string]string{"ok": "v"}) != "" {
		t.Error("BadField")
	}
}

// FuzzRequest: any bytes frame and parse or fail, never panic or overrun.
func FuzzRequest(f *testing.F) {
	f.Add([]byte("POST /p HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\nContent-Length: 2\r\n\r\nab"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := FrameRequest(b, 1<<16)
		if err != nil || n == 0 {
			return
		}
		if n > len(b) {
			t.Fatalf("framed %d of %d bytes", n, len(b))
		}
		ParseRequest(b[:n], 1<<16)
	})
}

// FuzzResponse: ReadResponse on any bytes returns or fails, bounded.
func FuzzResponse(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"))
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nbody"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ReadResponse(bufio.NewReader(strings.NewReader(string(b))), "GET", 1<<12)
		if err == nil && len(r.Body) > 1<<12 {
			t.Fatalf("a %d-byte body over the maximum", len(r.Body))
		}
	})
}
