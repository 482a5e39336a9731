package script

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/script/guard"
)

func TestLoadFramerEnd(t *testing.T) {
	f, err := LoadFramer("../scripts/end-framer.lua")
	if err != nil {
		t.Fatal(err)
	}
	buf := []byte("oneENDtwoENDthr")
	var got []string
	for {
		m, n, err := f.Decode(buf)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		got = append(got, string(m))
		buf = buf[n:]
	}
	if strings.Join(got, "|") != "one|two" || string(buf) != "thr" {
		t.Errorf("got %q rest %q", got, buf)
	}
	enc, err := f.Encode([]byte("x:"), []byte("hi"))
	if err != nil || string(enc) != "x:hiEND" {
		t.Errorf("encode %q %v", enc, err)
	}
	if _, err := f.Finish([]byte("thr")); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Errorf("finish: %v", err)
	}
	if f.String() != "lua:end-framer.lua" {
		t.Errorf("name %q", f.String())
	}
}

func TestFramerBadResults(t *testing.T) {
	for _, c := range []struct{ body, want string }{
		{`return "m", 0`, "bad.lua: decode returned 0 bytes used with a message"},
		{`return "m", 99`, "bad.lua: decode used 99 bytes of the 3 it was given"},
		{`return "m", -1`, "a negative count"},
		{`return "m", 1.5`, "want a whole number"},
		{`return "m"`, "without the number of bytes used"},
		{`return 42, 1`, "decode returned a number, want a string or nil"},
		{`return {}, 1`, "decode returned a table"},
		{`error("boom")`, "bad.lua: decode: bad.lua:1: boom"},
	} {
		f, err := NewFramer("bad.lua", []byte(`return {decode = function(buf) `+c.body+` end}`))
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = f.Decode([]byte("abc"))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.body, err, c.want)
		}
	}
	for _, c := range []struct{ src, want string }{
		{`return 1`, "must return a table"},
		{`return {}`, "no decode function"},
		{`return {decode = function() end, encode = 3}`, "encode is a number"},
		{`x = `, "bad.lua:1:"},
	} {
		if _, err := NewFramer("bad.lua", []byte(c.src)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.src, err, c.want)
		}
	}
	f, _ := NewFramer("enc.lua", []byte(`return {decode = function() end, encode = function() return nil end}`))
	if _, err := f.Encode(nil, []byte("x")); err == nil || !strings.Contains(err.Error(), "encode returned a nil") {
		t.Errorf("encode: %v", err)
	}
}

// A framer table in a device that misbehaves fails its connection, not the device.
func TestDeviceFramerTableError(t *testing.T) {
	addr := echoServer(t)
	r := run(t, `
		local c = assert(net.connect(TARGET, {frame = {decode = function(buf) return buf, 0 end}}))
		c:send("x")
		print(c:recv(1))
		print(c:recv(1))
	`, 3*1e9, &Env{Target: addr})
	if r.err != nil || r.out != "nil\tframer: decode returned 0 bytes used with a message\nnil\tclosed\n" {
		t.Fatalf("out %q err %v", r.out, r.err)
	}
}

func TestLuaFramerConcurrent(t *testing.T) {
	f, err := LoadFramer("../scripts/end-framer.lua")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				msg := fmt.Sprintf("g%d-%d", g, i)
				wire, _ := f.Encode(nil, []byte(msg))
				m, n, err := f.Decode(append(wire, "nextEND"...))
				if err != nil || string(m) != msg || n != len(wire) {
					t.Errorf("got %q %d %v", m, n, err)
					return
				}
			}
		}(g)
	}
	wg.Wait()
}

// BenchmarkLuaDelimFramer decodes a stream of 100-byte and 1 KiB messages the
// way a reader does: decode, consume, decode the rest.
func BenchmarkLuaDelimFramer(b *testing.B) {
	for _, size := range []int{100, 1024} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			f, err := LoadFramer("../scripts/end-framer.lua")
			if err != nil {
				b.Fatal(err)
			}
			msg := bytes.Repeat([]byte("x"), size-3)
			var chunk []byte
			for len(chunk) < 64<<10 {
				chunk = append(append(chunk, msg...), "END"...)
			}
			b.SetBytes(int64(len(chunk)))
			for b.Loop() {
				buf := chunk
				for len(buf) > 0 {
					_, n, err := f.Decode(buf)
					if err != nil || n == 0 {
						b.Fatal(err, n)
					}
					buf = buf[n:]
				}
			}
		})
	}
}

// A framer's runaway decode holds one state for its budget; the other
// connections' calls run in other states meanwhile, and the runaway's state
// is thrown away.
func TestSpinningDecodeStopsOnlyItsCall(t *testing.T) {
	withLimits(t, guard.Limits{Timeout: time.Second})
	lf, err := NewFramer("spin.lua", []byte(`return {decode = function(buf)
		if buf:find("spin") then while true do end end
		local i = buf:find("\n", 1, true)
		if i then return buf:sub(1, i - 1), i end
	end}`))
	if err != nil {
		t.Fatal(err)
	}
	spun := make(chan error, 1)
	start := time.Now()
	go func() {
		_, _, err := lf.Decode([]byte("spin\n"))
		spun <- err
	}()
	time.Sleep(10 * time.Millisecond)
	for i := 0; i < 50; i++ { // meanwhile, another connection's messages
		m, n, err := lf.Decode([]byte("hello\n"))
		if err != nil || string(m) != "hello" || n != 6 {
			t.Fatalf("decode beside the runaway: %q %d %v", m, n, err)
		}
	}
	select {
	case err := <-spun:
		t.Fatalf("the runaway ended after %v (%v) before the decodes beside it: they waited for it", time.Since(start), err)
	default:
	}
	err = <-spun
	if err == nil || !strings.Contains(err.Error(), "spin.lua: decode: still running after 1s, its budget (--lua-timeout)") {
		t.Fatalf("runaway: %v", err)
	}
	if took := time.Since(start); took > time.Second+slack {
		t.Errorf("the runaway was stopped after %v", took)
	}
	lf.mu.Lock()
	for _, st := range lf.idle {
		if st.slot.Err() != nil {
			t.Error("a stopped state went back to the pool")
		}
	}
	lf.mu.Unlock()
	if m, _, err := lf.Decode([]byte("again\n")); err != nil || string(m) != "again" {
		t.Fatalf("after the runaway: %q %v", m, err)
	}
}

func TestFramerSandbox(t *testing.T) {
	for src, want := range map[string]string{
		`dofile("/etc/passwd") return {decode = function() end}`: "dofile is not available",
		`os.execute("true") return {decode = function() end}`:    "os.execute is not available",
		`return {decode = function(b) os.exit(0) end}`:           "os.exit is not available",
		`while true do end`: "still running after",
		`return {decode = function(b) return string.rep(b, 2^40), 1 end}`: "string.rep: the result would be",
	} {
		lf, err := NewFramer("f.lua", []byte(src))
		if err == nil {
			_, _, err = lf.Decode([]byte("x"))
		}
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err = %v, want %q", src, err, want)
		}
	}
}
