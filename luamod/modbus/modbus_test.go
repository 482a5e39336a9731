package modbus

import (
	"bytes"
	"errors"
	"testing"
)

type mapRegs map[Table]map[uint16]uint16

func (m mapRegs) Read(t Table, a uint16) (uint16, bool) { v, ok := m[t][a]; return v, ok }
func (m mapRegs) Write(t Table, a uint16, v uint16) bool {
	if _, ok := m[t][a]; !ok {
		return false
	}
	m[t][a] = v
	return true
}

func TestServeAndResponse(t *testing.T) {
	m := mapRegs{Holding: {0: 1, 1: 0xfffe}, Coils: {0: 0, 1: 1, 2: 1}, Input: {}, Discrete: {}}
	for _, c := range []struct {
		req  []byte
		want []uint16
		exc  byte
	}{
		{ReadRequest(ReadHolding, 0, 2), []uint16{1, 0xfffe}, 0},
		{ReadRequest(ReadCoils, 0, 3), []uint16{0, 1, 1}, 0},
		{ReadRequest(ReadHolding, 1, 2), nil, IllegalDataAddress},
		{ReadRequest(ReadHolding, 0, 0), nil, IllegalDataValue},
		{ReadRequest(ReadInput, 0, 1), nil, IllegalDataAddress},
		{WriteSingle(WriteRegister, 1, 7), nil, 0},
		{WriteSingle(WriteCoil, 0, 1), nil, 0},
		{WriteMultiple(WriteRegisters, 0, []uint16{5, 6}), nil, 0},
		{WriteMultiple(WriteCoils, 0, []uint16{1, 0, 0}), nil, 0},
		{WriteMultiple(WriteRegisters, 1, []uint16{5, 6}), nil, IllegalDataAddress},
		{[]byte{43, 14, 1, 0, 0}, nil, IllegalFunction},
		{[]byte{3, 0}, nil, IllegalDataValue},
	} {
		resp := Serve(c.req, m)
		vals, err := Response(c.req, resp)
		var e *Exception
		if c.exc != 0 {
			if !errors.As(err, &e) || e.Code != c.exc {
				t.Errorf("% x: %v, want exception %d", c.req, err, c.exc)
			}
			continue
		}
		if err != nil || len(vals) != len(c.want) {
			t.Errorf("% x: %v %v", c.req, vals, err)
		}
	}
	if m[Holding][0] != 5 || m[Holding][1] != 6 || m[Coils][0] != 1 || m[Coils][1] != 0 {
		t.Errorf("writes: %v", m)
	}
	// wrapping round trips
	f := TCP(7, 1, ReadRequest(ReadHolding, 0, 2))
	if tid, unit, pdu, err := Unwrap(f, false); err != nil || tid != 7 || unit != 1 || !bytes.Equal(pdu, ReadRequest(3, 0, 2)) {
		t.Errorf("tcp unwrap: %d %d % x %v", tid, unit, pdu, err)
	}
	if _, unit, pdu, err := Unwrap(RTU(9, []byte{3, 0, 0, 0, 1}), true); err != nil || unit != 9 || len(pdu) != 5 {
		t.Errorf("rtu unwrap: %d % x %v", unit, pdu, err)
	}
	if _, err := Response(ReadRequest(ReadHolding, 0, 2), []byte{3, 2, 0, 1}); err == nil {
		t.Error("a short read response was taken")
	}
}

// FuzzServe: any request PDU gets an answer the client side can read, and
// nothing panics.
func FuzzServe(f *testing.F) {
	f.Add(ReadRequest(ReadHolding, 0, 2))
	f.Add(WriteMultiple(WriteCoils, 0, []uint16{1, 0, 1}))
	f.Add(WriteMultiple(WriteRegisters, 0, []uint16{1, 2}))
	f.Fuzz(func(t *testing.T, req []byte) {
		m := mapRegs{Holding: {0: 1, 1: 2}, Coils: {0: 1}, Input: {0: 3}, Discrete: {0: 0}}
		resp := Serve(req, m)
		if len(req) > 0 && len(resp) > 0 && resp[0]&0x7f != req[0]&0x7f {
			t.Fatalf("answered function %d to %d", resp[0], req[0])
		}
		if len(req) >= 5 {
			Response(req, resp)
		}
	})
}

// holdingOnly is a map with holding registers and no other table.
type holdingOnly struct{ mapRegs }

func (holdingOnly) Has(t Table) bool { return t == Holding }

// A map without a table answers its functions "illegal function"; one with
// the table but not the address "illegal data address".
func TestServeMissingTable(t *testing.T) {
	m := holdingOnly{mapRegs{Holding: {0: 1}, Coils: {0: 1}}}
	for _, c := range []struct {
		req []byte
		exc byte
	}{
		{ReadRequest(ReadCoils, 0, 1), IllegalFunction},
		{ReadRequest(ReadInput, 0, 1), IllegalFunction},
		{WriteSingle(WriteCoil, 0, 1), IllegalFunction},
		{WriteMultiple(WriteCoils, 0, []uint16{1}), IllegalFunction},
		{ReadRequest(ReadHolding, 5, 1), IllegalDataAddress},
	} {
		_, err := Response(c.req, Serve(c.req, m))
		var e *Exception
		if !errors.As(err, &e) || e.Code != c.exc {
			t.Errorf("% x: %v, want exception %d", c.req, err, c.exc)
		}
	}
	if vals, err := Response(ReadRequest(ReadHolding, 0, 1), Serve(ReadRequest(ReadHolding, 0, 1), m)); err != nil || vals[0] != 1 {
		t.Errorf("read holding 0: %v %v", vals, err)
	}
}
