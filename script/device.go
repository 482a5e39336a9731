package script

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/proto"
	"github.com/wirecat-dev/wirecat/script/guard"
)

// Env is what every device of a run shares: the fleet's size, its settings,
// where its events and diagnostics go, and its counters.
type Env struct {
	Count   int               // device.count
	Seed    uint64            // with the device id, seeds math.random
	Args    map[string]string // the args table
	Target  string            // the TARGET global: where client devices connect
	Connect string            // when set, every net.connect goes here instead
	Listen  string            // when set, every net.listen binds here instead
	Frame   string            // default framing of connections; "" is the script's FRAME, else raw
	TLS     link.TLSOptions   // defaults for tls:// connections
	WS      link.WSOptions    // defaults for ws:// connections (--header, --subprotocol...)
	Dial    DialDefaults      // defaults of net.connect's timeout and source
	// Load resolves lua:FILE framing specs; nil uses LoadFramer.
	Load proto.LoadFunc
	// MaxFrame bounds a message (and recv_until's search); 0 means 1 MiB.
	MaxFrame int
	// WriteTimeout bounds a send that the peer does not drain; 0 means 10s.
	WriteTimeout time.Duration
	Sink         event.Sink // every open, message and close; nil discards
	Stdout       io.Writer  // print; nil discards
	Stderr       io.Writer  // log.*; nil discards
	Verbose      bool       // show log.debug
	// Stats are the fleet's metrics (NewStats); nil makes a set of the
	// Env's own on first use.
	Stats *Stats

	statsOnce sync.Once
	dialOnce  sync.Once
	dials     chan struct{} // bounds dials in flight, so a fleet does not overflow the SYN backlog
	gateMu    sync.Mutex
	gateRun   int      // goroutines running goDial's queue
	gateQ     []func() // connects waiting for one of them
	outMu     sync.Mutex
	frMu      sync.Mutex
	framer    map[string]proto.Framer
}

func (e *Env) stats() *Stats {
	e.statsOnce.Do(func() {
		if e.Stats == nil {
			e.Stats = NewStats(nil)
		}
	})
	return e.Stats
}

// maxDials is how many connects a run has in flight at once.
const maxDials = 256

func (e *Env) dialSlots() chan struct{} {
	e.dialOnce.Do(func() { e.dials = make(chan struct{}, maxDials) })
	return e.dials
}

// goDial runs dial, a connect without retries, on one of at most maxDials
// goroutines. A fleet started at once queues its other connects as funcs,
// not as goroutines blocked on a dial slot: 10,000 of those held 40 MB of
// stacks at the start-up's peak.
func (e *Env) goDial(dial func()) {
	e.gateMu.Lock()
	if e.gateRun < maxDials {
		e.gateRun++
		e.gateMu.Unlock()
		go e.dialQueue(dial)
		return
	}
	e.gateQ = append(e.gateQ, dial)
	e.gateMu.Unlock()
}

func (e *Env) dialQueue(dial func()) {
	for {
		dial()
		e.gateMu.Lock()
		if len(e.gateQ) == 0 {
			e.gateQ = nil
			e.gateRun--
			e.gateMu.Unlock()
			return
		}
		dial = e.gateQ[0]
		e.gateQ[0] = nil
		e.gateQ = e.gateQ[1:]
		e.gateMu.Unlock()
	}
}

func (e *Env) emit(ev *event.Event) {
	if e.Sink != nil {
		e.Sink.Emit(ev)
	}
}

func (e *Env) write(w io.Writer, s string) {
	if w == nil {
		return
	}
	e.outMu.Lock()
	io.WriteString(w, s)
	e.outMu.Unlock()
}

// DeviceError is a script failing on one device: where, and from which coroutine.
type DeviceError struct {
	ID  int
	Msg string // script:line: what went wrong
	// Trace is the traceback, a line per Lua call that led there (innermost
	// first, at most a few), then which coroutine it was when it was not
	// the main chunk: an every() callback, a listen handler.
	Trace string
}

func (e *DeviceError) Error() string {
	return fmt.Sprintf("device %d: %s\n\t%s", e.ID, e.Msg, e.Trace)
}

// Device is one running instance of a program. Everything in it, its Lua
// state above all, belongs to the goroutine running Run: I/O goroutines hand
// their results back through events.
type Device struct {
	ID   int
	env  *Env
	prog *Program
	L    *lua.LState
	ctx  context.Context
	slot *guard.Slot

	events chan func()
	done   chan struct{}
	ready  []*task
	cur    *task
	tasks  int // live coroutines
	timers timerHeap
	clock  *time.Timer
	keep   int // every/after timers and listeners that keep the device alive
	conns  map[*conn]struct{}
	lsts   map[*listener]struct{}
	rng    *rand.Rand
	pcg    *rand.PCG
	start  time.Time

	http        httpPool       // the http client's idle connections
	listenCodec codec          // serveListen's net.listen: the protocol's framing
	onClose     []func()       // modules' cleanups when the device ends
	coapObs     *coapObservers // coap.serve's observers

	// A turn of the device on a worker (see onWorker): what woke it, what
	// the turn found, and the func a worker runs, made once.
	woke     func()
	turnErr  error
	turnEnd  bool
	turnJob  func()
	turnDone chan struct{}

	// For the fleet's metrics: whether the device ever had a connection
	// (devices.connected), how many it has open (devices up), and whether
	// one it dialled has ended since its last dial (the next is a reconnect).
	everConnected bool
	open          int
	lost          bool
}

type task struct {
	th     *lua.LState
	fn     *lua.LFunction
	cancel context.CancelFunc
	args   []lua.LValue
	origin string
	wait   *timer // the sleep or timeout timer the task waits on, if any
	busy   bool   // waiting for something that will wake it
	ended  bool   // its code has returned, but a call it tail-called still waits
	onDone func()
}

var deviceKey = lua.LString("wirecat.device")

// ErrStopped is returned by Run when the context ended the device.
var ErrStopped = errors.New("stopped")

// Run runs device id of the program until its script and everything it
// started are done, the script fails, or ctx ends (ErrStopped).
func (p *Program) Run(ctx context.Context, id int, env *Env) error {
	d := &Device{ID: id, env: env, prog: p, events: make(chan func(), 1), done: make(chan struct{}),
		conns: map[*conn]struct{}{}, lsts: map[*listener]struct{}{}, start: time.Now()}
	d.pcg = rand.NewPCG(env.Seed, uint64(id))
	d.rng = rand.New(d.pcg)
	// The device's context is its slot's: the guard cancels it when a run
	// between two waits goes over --lua-timeout (when set for devices) or
	// when the device is the likely cause of a heap over --lua-memory.
	d.slot = guard.NewDeviceSlot(ctx, p.Name)
	defer d.slot.Close()
	d.ctx = d.slot.Context()
	// What the device runs, it runs on a worker's stack (see onWorker).
	onWorker(func() { d.setUp(p) })
	defer onWorker(d.close)
	err := d.loop()
	if err == nil && d.ctx.Err() != nil {
		err = ErrStopped
		if le := d.limit(); le != nil { // stopped while it waited: over the memory cap
			err = &DeviceError{ID: id, Msg: le.Error(), Trace: "while it waited"}
		}
	}
	return err
}

// setUp makes the device's Lua state and spawns its main chunk.
func (d *Device) setUp(p *Program) {
	id, env := d.ID, d.env
	root := lua.NewState(lua.Options{SkipOpenLibs: true, RegistrySize: 128, RegistryMaxSize: 1 << 20,
		CallStackSize: 200, MinimizeStackMemory: true})
	// NewState gives a state no fewer than 128 registers (2 KiB), more than
	// the device's state, which only resumes its coroutines, ever uses. So
	// the device runs on a thread of it with 32, growing as calls need (as
	// its coroutines do: NewThread copies these options), and the root
	// state itself is dropped; its globals live on in the thread's.
	root.Options.RegistrySize = 32
	L, _ := root.NewThread() // root has no context: no cancel func
	d.L = L
	L.SetContext(d.ctx)
	newDeviceGlobals(L)
	guard.Attach(L, d.slot)
	ud := L.NewUserData()
	ud.Value = d
	L.G.Registry.RawSet(deviceKey, ud)
	g := L.G.Global
	dev := L.CreateTable(0, 2)
	dev.RawSetString("id", lua.LNumber(id))
	dev.RawSetString("count", lua.LNumber(env.Count))
	g.RawSetString("device", dev)
	args := L.CreateTable(0, len(env.Args))
	for k, v := range env.Args {
		args.RawSetString(k, lua.LString(v))
	}
	g.RawSetString("args", args)
	if env.Target != "" {
		g.RawSetString("TARGET", lua.LString(env.Target))
	}
	d.spawn(L.NewFunctionFromProto(p.proto), "in main chunk")
}

// limit is the bound that stopped the device, if one did.
func (d *Device) limit() *guard.LimitError {
	var le *guard.LimitError
	if errors.As(d.slot.Err(), &le) {
		return le
	}
	return nil
}

func devOf(L *lua.LState) *Device {
	ud, ok := L.G.Registry.RawGet(deviceKey).(*lua.LUserData)
	if !ok {
		L.RaiseError("wirecat functions only work in a device script")
	}
	return ud.Value.(*Device)
}

func (d *Device) close() {
	close(d.done)
	for c := range d.conns {
		c.shut(true) // the device ended (or was stopped): our side closes
	}
	for l := range d.lsts {
		l.close()
	}
	for _, f := range d.onClose {
		f()
	}
	if d.clock != nil {
		d.clock.Stop()
	}
	d.L.Close()
}

// post hands fn to the device goroutine; false if the device ended first.
func (d *Device) post(fn func()) bool {
	select {
	case d.events <- fn:
		return true
	case <-d.done:
		return false
	}
}

func (d *Device) spawn(fn *lua.LFunction, origin string, args ...lua.LValue) *task {
	th, cancel := d.L.NewThread()
	t := &task{th: th, fn: fn, cancel: cancel, args: args, origin: origin}
	d.tasks++
	d.ready = append(d.ready, t)
	return t
}

func (d *Device) loop() error {
	d.turnDone = make(chan struct{})
	d.turnJob = func() {
		if d.woke != nil {
			d.woke()
			d.woke = nil
		}
		d.turnEnd, d.turnErr = d.runReady()
		d.turnDone <- struct{}{}
	}
	for {
		handOff(d.turnJob)
		<-d.turnDone
		if d.turnErr != nil || d.turnEnd {
			return d.turnErr
		}
		var tick <-chan time.Time
		if len(d.timers) > 0 {
			wait := time.Until(d.timers[0].at)
			if d.clock == nil {
				d.clock = time.NewTimer(wait)
			} else {
				d.clock.Reset(wait)
			}
			tick = d.clock.C
		}
		select {
		case d.woke = <-d.events:
		case <-tick:
			d.woke = d.fireDue
		case <-d.ctx.Done():
			return nil
		}
	}
}

// runReady resumes the tasks that can run; done when none is left and
// nothing keeps the device alive.
func (d *Device) runReady() (done bool, err error) {
	for i := 0; i < len(d.ready); i++ {
		t := d.ready[i]
		d.ready[i] = nil
		if err := d.resume(t); err != nil {
			return true, err
		}
	}
	d.ready = d.ready[:0]
	return d.tasks == 0 && d.keep == 0, nil
}

// A device's goroutine mostly waits, and waits shallow; but what it runs
// goes deep (the Lua VM, the Go functions scripts call, framers), and a
// goroutine keeps the stack it grew to until the collector halves it,
// one collection at a time: 4 to 7 KiB a device in a fleet. So a device
// runs each turn on a worker's stack and its own stays small. Workers
// are made when none is idle and kept, up to maxIdleWorkers, for the
// next turns: a fleet needs about as many as run at once.
const maxIdleWorkers = 64

type worker chan func()

var idleWorkers = make(chan worker, maxIdleWorkers)

// onWorker runs f on a worker goroutine and returns when it is done.
func onWorker(f func()) {
	done := make(chan struct{})
	handOff(func() {
		f()
		close(done)
	})
	<-done
}

// handOff gives job to an idle worker, or to a new one.
func handOff(job func()) {
	select {
	case w := <-idleWorkers:
		w <- job
	default:
		go work(make(worker), job)
	}
}

func work(w worker, job func()) {
	for {
		job()
		select {
		case idleWorkers <- w:
		default:
			return // enough are idle
		}
		job = <-w
	}
}

func (d *Device) resume(t *task) error {
	if t.ended { // its waiting call was its last act: nothing left to run
		d.finish(t)
		return nil
	}
	d.cur = t
	args := t.args
	t.args = nil
	guard.NilResults(t.th) // the results its waiting call does not give read as nil
	d.slot.Enter()
	st, err, _ := d.L.Resume(t.th, t.fn, args...)
	d.slot.Leave()
	d.cur = nil
	switch st {
	case lua.ResumeYield:
		if !t.busy { // a bare coroutine.yield: let the others run, then go on
			d.sleep(t, 0)
		}
		return nil
	case lua.ResumeOK:
		if t.busy {
			// `return sleep(1)` (or `return c:recv()`) as the coroutine's
			// last act: a tail call, so the coroutine has no frame left to
			// resume, yet the call is still waiting. The task lives on until
			// the call is done (a handler's conn stays open meanwhile), and
			// its results, like any coroutine's, go nowhere.
			t.ended = true
			return nil
		}
	case lua.ResumeError:
		if le := d.limit(); le != nil {
			// The VM raised the cancellation where the script was: say where.
			trace := t.origin
			if pos := errPos(luaErrMsg(err)); pos != "" {
				trace = pos + " " + t.origin
			}
			d.finish(t)
			return &DeviceError{ID: d.ID, Msg: le.Error(), Trace: trace}
		}
		if d.ctx.Err() != nil {
			return nil
		}
		msg := luaErrMsg(err)
		trace := traceback(t.th, msg, t.origin)
		d.finish(t)
		return &DeviceError{ID: d.ID, Msg: msg, Trace: trace}
	}
	d.finish(t)
	return nil
}

func luaErrMsg(err error) string {
	var ae *lua.ApiError
	if errors.As(err, &ae) && ae.Object != nil {
		s := ae.Object.String()
		if i := strings.Index(s, "\nstack traceback:"); i >= 0 {
			s = s[:i]
		}
		return s
	}
	return err.Error()
}

// errPos is the "script:line:" a Lua error message starts with, or "".
func errPos(msg string) string {
	file, rest, ok := strings.Cut(msg, ":")
	if !ok || file == "" {
		return ""
	}
	line, _, ok := strings.Cut(rest, ":")
	if !ok || line == "" || strings.Trim(line, "0123456789") != "" {
		return ""
	}
	return file + ":" + line + ":"
}

// maxTrace is how many calls a device error's traceback shows.
const maxTrace = 3

// traceback lists the Lua calls still on a failed coroutine's stack. A
// runtime error in the VM has already left the failing function's frame; an
// error raised by a Go function (error, a bad argument) has not, and that
// frame repeats msg's own script:line, so it is left out.
func traceback(th *lua.LState, msg, origin string) string {
	var lines []string
	more, first := 0, true
	for i := 0; ; i++ {
		dbg, ok := th.GetStack(i)
		if !ok {
			break
		}
		if _, err := th.GetInfo("nSl", dbg, lua.LNil); err != nil || dbg.CurrentLine <= 0 {
			continue // a Go function
		}
		pos := fmt.Sprintf("%s:%d:", dbg.Source, dbg.CurrentLine)
		if first {
			first = false
			if strings.HasPrefix(msg, pos) {
				continue
			}
		}
		if len(lines) == maxTrace {
			more++
			continue
		}
		switch {
		case dbg.LineDefined == 0: // gopher-lua calls a coroutine's first function "main" too
			lines = append(lines, pos+" in main chunk")
		case dbg.Name != "" && dbg.What != "main":
			lines = append(lines, fmt.Sprintf("%s in function '%s'", pos, dbg.Name))
		default:
			lines = append(lines, fmt.Sprintf("%s in function <%s:%d>", pos, dbg.Source, dbg.LineDefined))
		}
	}
	if more > 0 {
		lines = append(lines, fmt.Sprintf("(%d more)", more))
	}
	if origin != "in main chunk" || len(lines) == 0 {
		lines = append(lines, origin)
	}
	return strings.Join(lines, "\n\t")
}

func (d *Device) finish(t *task) {
	d.tasks--
	t.cancel()
	if t.wait != nil {
		d.stopTimer(t.wait)
	}
	if t.onDone != nil {
		t.onDone()
	}
}

// block marks the running task as waiting for something that will wake it;
// the calling Go function must then return L.Yield(). It refuses inside a
// coroutine the script made itself, whose resume would get our yield.
func (d *Device) block(L *lua.LState, what string) *task {
	t := d.cur
	if t == nil || t.th != L {
		L.RaiseError("%s cannot wait inside coroutine.create/wrap; use spawn, every or after", what)
	}
	t.busy = true
	return t
}

// wake resumes a waiting task with vals as the results of its waiting call.
func (d *Device) wake(t *task, vals ...lua.LValue) {
	if !t.busy {
		return
	}
	t.busy = false
	if t.wait != nil {
		d.stopTimer(t.wait)
		t.wait = nil
	}
	t.args = vals
	d.ready = append(d.ready, t)
}

func (d *Device) sleep(t *task, sec float64) {
	t.busy = true
	t.wait = d.addTimer(sec, func() { t.wait = nil; d.wake(t) })
}

// timers: one heap per device, served by one time.Timer.

type timer struct {
	at   time.Time
	idx  int
	fire func()
}

type timerHeap []*timer

func (h timerHeap) Len() int           { return len(h) }
func (h timerHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h timerHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].idx = i; h[j].idx = j }
func (h *timerHeap) Push(x any)        { t := x.(*timer); t.idx = len(*h); *h = append(*h, t) }
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.idx = -1
	return t
}

func dur(sec float64) time.Duration {
	if sec <= 0 {
		return 0
	}
	return time.Duration(sec * float64(time.Second))
}

func (d *Device) addTimer(sec float64, fire func()) *timer {
	t := &timer{at: time.Now().Add(dur(sec)), fire: fire}
	heap.Push(&d.timers, t)
	return t
}

func (d *Device) stopTimer(t *timer) {
	if t.idx >= 0 && t.idx < len(d.timers) && d.timers[t.idx] == t {
		heap.Remove(&d.timers, t.idx)
	}
}

func (d *Device) fireDue() {
	now := time.Now()
	for len(d.timers) > 0 && !d.timers[0].at.After(now) {
		t := heap.Pop(&d.timers).(*timer)
		t.fire()
	}
}
