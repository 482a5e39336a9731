package script

import (
	"fmt"
	"net"

	lua "github.com/yuin/gopher-lua"

	"github.com/wirecat-dev/wirecat/event"
	"github.com/wirecat-dev/wirecat/link"
	"github.com/wirecat-dev/wirecat/luamod/modbus"
	"github.com/wirecat-dev/wirecat/proto"
)

// The Lua modbus module: a client whose calls send a request and wait for
// its answer on a connection framed modbus-tcp or modbus-rtu, and a server
// (modbus.serve) answering from a register map, a Lua table the script
// keeps changing.

// modbusClientSrc builds a client around a connected conn; its methods are
// Lua, so that they wait on conn:recv like any script.
const modbusClientSrc = `local conn, unit, rtu, timeout, pdu, request, response = ...
local tid = 0
local function call(req, bits)
  tid = tid % 65535 + 1
  local ok, err = conn:send(request(rtu, tid, unit, req))
  if not ok then return nil, err end
  while true do
    local frame, err = conn:recv(timeout)
    if not frame then return nil, err end
    local vals, err, stale = response(rtu, tid, unit, req, frame, bits)
    if not stale then return vals, err end
  end
end
local c = {}
function c:read_coils(addr, n) return call(pdu.read(1, addr, n), true) end
function c:read_discrete(addr, n) return call(pdu.read(2, addr, n), true) end
function c:read_holding(addr, n) return call(pdu.read(3, addr, n)) end
function c:read_input(addr, n) return call(pdu.read(4, addr, n)) end
function c:write_coil(addr, v) return call(pdu.write1(5, addr, v)) end
function c:write_register(addr, v) return call(pdu.write1(6, addr, v)) end
function c:write_coils(addr, t) return call(pdu.write(15, addr, t)) end
function c:write_registers(addr, t) return call(pdu.write(16, addr, t)) end
function c:close() conn:close() end
return c`

var modbusClientChunk = luaChunk{name: "modbus", src: modbusClientSrc}

// modbusServeSrc is modbus.serve's connection loop.
const modbusServeSrc = `local handle, open, st = ...
return function(conn)
  while true do
    local frame, err = conn:recv(0.5)
    if not frame and err ~= "timeout" then return end
    if not open(st.listener) then return end -- the listener closed: hang up
    local resp = frame and handle(frame)
    if resp and not conn:send(resp) then return end
  end
end`

var modbusServeChunk = luaChunk{name: "modbus.serve", src: modbusServeSrc}

func checkU16(L *lua.LState, i int, what string, min, max int) uint16 {
	v := L.CheckNumber(i)
	n := int(v)
	if float64(n) != float64(v) || n < min || n > max {
		L.ArgError(i, fmt.Sprintf("%s must be an integer from %d to %d", what, min, max))
	}
	return uint16(n)
}

var modbusPDU = map[string]lua.LGFunction{
	// read(fc, addr, count)
	"read": func(L *lua.LState) int {
		fc := byte(L.CheckInt(1))
		max := 125
		if fc <= 2 {
			max = 2000
		}
		addr := checkU16(L, 2, "address", 0, 65535)
		n := checkU16(L, 3, "count", 1, max)
		L.Push(lua.LString(modbus.ReadRequest(fc, addr, n)))
		return 1
	},
	// write1(fc, addr, value)
	"write1": func(L *lua.LState) int {
		fc := byte(L.CheckInt(1))
		addr := checkU16(L, 2, "address", 0, 65535)
		var v uint16
		if fc == modbus.WriteCoil {
			if lua.LVAsBool(L.Get(3)) && L.Get(3) != lua.LNumber(0) {
				v = 1
			}
		} else {
			v = checkU16(L, 3, "value", 0, 65535)
		}
		L.Push(lua.LString(modbus.WriteSingle(fc, addr, v)))
		return 1
	},
	// write(fc, addr, values)
	"write": func(L *lua.LState) int {
		fc := byte(L.CheckInt(1))
		addr := checkU16(L, 2, "address", 0, 65535)
		t := L.CheckTable(3)
		n := t.Len()
		max := 123
		if fc == modbus.WriteCoils {
			max = 1968
		}
		if n < 1 || n > max {
			L.ArgError(3, fmt.Sprintf("1 to %d values", max))
		}
		vals := make([]uint16, n)
		for i := range vals {
			v := t.RawGetInt(i + 1)
			if fc == modbus.WriteCoils {
				if lua.LVAsBool(v) && v != lua.LNumber(0) {
					vals[i] = 1
				}
				continue
			}
			num, ok := v.(lua.LNumber)
			if !ok || num < 0 || num > 65535 || float64(int(num)) != float64(num) {
				L.ArgError(3, fmt.Sprintf("value %d is not an integer from 0 to 65535", i+1))
			}
			vals[i] = uint16(num)
		}
		L.Push(lua.LString(modbus.WriteMultiple(fc, addr, vals)))
		return 1
	},
}

// request(rtu, tid, unit, pdu) -> the frame.
func modbusRequest(L *lua.LState) int {
	rtu, tid, unit, pdu := lua.LVAsBool(L.Get(1)), uint16(L.CheckInt(2)), byte(L.CheckInt(3)), []byte(L.CheckString(4))
	if rtu {
		L.Push(lua.LString(modbus.RTU(unit, pdu)))
	} else {
		L.Push(lua.LString(modbus.TCP(tid, unit, pdu)))
	}
	return 1
}

// response(rtu, tid, unit, req, frame, bits) -> values (true for a
// write) | nil, err, stale (the answer to another request: skip it).
func modbusResponse(L *lua.LState) int {
	rtu, tid, unit := lua.LVAsBool(L.Get(1)), uint16(L.CheckInt(2)), byte(L.CheckInt(3))
	req, frame, bits := []byte(L.CheckString(4)), []byte(L.CheckString(5)), lua.LVAsBool(L.Get(6))
	rtid, runit, pdu, err := modbus.Unwrap(frame, rtu)
	if err != nil {
		return pushErr(L, err.Error())
	}
	if (!rtu && rtid != tid) || runit != unit {
		L.Push(lua.LNil)
		L.Push(lua.LString("another request's answer"))
		L.Push(lua.LTrue)
		return 3
	}
	vals, err := modbus.Response(req, pdu)
	if err != nil {
		return pushErr(L, err.Error())
	}
	if vals == nil {
		L.Push(lua.LTrue)
		return 1
	}
	t := L.CreateTable(len(vals), 0)
	for i, v := range vals {
		if bits {
			t.RawSetInt(i+1, lua.LBool(v != 0))
		} else {
			t.RawSetInt(i+1, lua.LNumber(v))
		}
	}
	L.Push(t)
	return 1
}

// modbus.connect(addr[, opts]) -> client, or nil, err.
func modbusConnect(L *lua.LState) int {
	d := devOf(L)
	spec := ""
	if s, ok := L.Get(1).(lua.LString); ok {
		spec = string(s)
	}
	if d.env.Connect != "" {
		spec = d.env.Connect
	}
	if spec == "" {
		spec = d.env.Target
	}
	opts := L.OptTable(2, nil)
	var o connOpts
	if opts != nil {
		o = d.parseOpts(L, withoutFrame(L, opts))
	} else {
		o = d.parseOpts(L, nil)
	}
	unit := lua.LNumber(optNumber(opts, "unit", 1))
	if unit < 0 || unit > 255 || float64(int(unit)) != float64(unit) {
		L.ArgError(2, "unit: an integer from 0 to 255")
	}
	rtu := opts != nil && lua.LVAsBool(opts.RawGetString("rtu"))
	timeout := optNumber(opts, "timeout", 1)
	framer := proto.ModbusTCP
	if rtu {
		framer = proto.ModbusRTU
	}
	a, err := link.Parse(spec, false)
	if err != nil {
		return pushErr(L, err.Error())
	}
	if a.Packet() {
		return pushErr(L, "modbus needs a stream transport, not "+a.Transport())
	}
	t := d.block(L, "modbus.connect")
	d.dialThen(a, o, func(nc net.Conn, err error) {
		if err != nil {
			d.wake(t, lua.LNil, lua.LString(link.Cause(err)))
			return
		}
		c := d.newConn(nc, a.Transport(), event.Client, false, goCodec{framer})
		pdu := newTable(d.L, modbusPDU)
		if err := d.L.CallByParam(lua.P{Fn: modbusClientChunk.function(d.L), NRet: 1, Protect: true},
			c.userdata(d.L), unit, lua.LBool(rtu), lua.LNumber(timeout), pdu,
			d.L.NewFunction(modbusRequest), d.L.NewFunction(modbusResponse)); err != nil {
			c.shut(true)
			d.wake(t, lua.LNil, lua.LString(luaErrMsg(err)))
			return
		}
		client := d.L.Get(-1)
		d.L.Pop(1)
		d.wake(t, client)
	})
	return L.Yield()
}

// luaRegs is a register map table: {holding = {[addr] = n}, input = ...,
// coils = {[addr] = bool}, discrete = ...}.
type luaRegs struct{ t *lua.LTable }

var tableNames = [...]string{modbus.Coils: "coils", modbus.Discrete: "discrete", modbus.Input: "input", modbus.Holding: "holding"}

func (m luaRegs) Read(t modbus.Table, addr uint16) (uint16, bool) {
	sub, ok := m.t.RawGetString(tableNames[t]).(*lua.LTable)
	if !ok {
		return 0, false
	}
	switch v := sub.RawGet(lua.LNumber(addr)).(type) {
	case lua.LNumber:
		n := int64(v)
		if t == modbus.Coils || t == modbus.Discrete {
			if n != 0 {
				n = 1
			}
		}
		if n < 0 { // a signed reading: two's complement, as devices send it
			n += 1 << 16
		}
		return uint16(n), true
	case lua.LBool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

// Has reports whether the map has table t at all: a device without coils
// answers a coil request "illegal function", as one that lacks the
// function does.
func (m luaRegs) Has(t modbus.Table) bool {
	_, ok := m.t.RawGetString(tableNames[t]).(*lua.LTable)
	return ok
}

// rtuBus is the modbus-rtu framing of a server on a bus. A server reads
// requests only, so their lengths are known from the function (1 to 6:
// 8 bytes; 15 and 16: 9 and the byte count), unlike the general framing,
// which must also allow for responses. Bytes that make no request with a
// valid CRC (noise, a frame cut short) are skipped one at a time until a
// frame starts, as a slave waits out a garbled frame, instead of ending
// the line (a pty, a serial port) for every client.
type rtuBus struct{}

func (rtuBus) Decode(buf []byte) ([]byte, int, error) {
	if len(buf) < 2 {
		return nil, 0, nil
	}
	var n int
	switch fc := buf[1]; {
	case fc >= 1 && fc <= 6:
		n = 8
	case fc == 15 || fc == 16:
		// Another slave's reply to 15/16 is 8 bytes (address, function,
		// start, quantity, CRC): read as a request, its CRC byte would be
		// taken for a byte count and hold up the bus for up to 264 bytes.
		if len(buf) >= 8 && proto.ModbusCRCOK(buf[:8]) {
			return nil, 8, nil
		}
		if len(buf) < 7 {
			return nil, 0, nil
		}
		n = 9 + int(buf[6])
	default: // a function the server does not serve: the general framing
		msg, n, err := proto.ModbusRTU.Decode(buf)
		if err != nil {
			return nil, 1, nil
		}
		return msg, n, nil
	}
	if len(buf) < n {
		return nil, 0, nil
	}
	if !proto.ModbusCRCOK(buf[:n]) {
		return nil, 1, nil
	}
	return buf[:n], n, nil
}

func (rtuBus) Encode(dst, msg []byte) ([]byte, error) { return proto.ModbusRTU.Encode(dst, msg) }

func (m luaRegs) Write(t modbus.Table, addr uint16, v uint16) bool {
	sub, ok := m.t.RawGetString(tableNames[t]).(*lua.LTable)
	if !ok {
		return false
	}
	key := lua.LNumber(addr)
	switch sub.RawGet(key).(type) {
	case lua.LBool:
		sub.RawSet(key, lua.LBool(v != 0))
	case lua.LNumber:
		sub.RawSet(key, lua.LNumber(v))
	default:
		return false
	}
	return true
}

// modbus.serve(addr[, opts], map) -> listener, or nil, err. map.unit, when
// set, is the only unit answered (others get no reply, as on a bus).
func modbusServe(L *lua.LState) int {
	opts, regs := serveArgs(L)
	addr := L.CheckString(1)
	d := devOf(L)
	rtu := opts != nil && lua.LVAsBool(opts.RawGetString("rtu"))
	handle := L.NewFunction(func(L *lua.LState) int {
		frame := []byte(L.CheckString(1))
		tid, unit, pdu, err := modbus.Unwrap(frame, rtu)
		if err != nil {
			return 0
		}
		if u, ok := regs.RawGetString("unit").(lua.LNumber); ok && byte(u) != unit {
			return 0
		}
		resp := modbus.Serve(pdu, luaRegs{regs})
		if rtu {
			L.Push(lua.LString(modbus.RTU(unit, resp)))
		} else {
			L.Push(lua.LString(modbus.TCP(tid, unit, resp)))
		}
		return 1
	})
	framer := proto.ModbusTCP
	if rtu {
		framer = rtuBus{}
	}
	st := L.CreateTable(0, 1)
	return serveListen(L, d, modbusServeChunk.function(d.L), addr, listenOpts(L, opts), goCodec{framer}, st,
		handle, L.NewFunction(httpOpen), st)
}
