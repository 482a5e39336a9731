// Package modbus is the Modbus codec behind the Lua modbus module: request
// and response PDUs of the common function codes, TCP (MBAP) and RTU (CRC)
// wrapping, and a server that answers from a register map with exception
// replies. The stream framings themselves are proto's modbus-tcp and
// modbus-rtu.
//
// It is written here: the Go Modbus libraries (goburrow/modbus,
// grid-x/modbus, simonvetter/modbus) are clients or servers that own their
// connections, goroutines and serial ports, where a device script needs the
// packets only, and what it needs of them is a few hundred lines.
package modbus

import (
	"errors"
	"fmt"

	"github.com/wirecat-dev/wirecat/proto"
)

// Function codes served and sent.
const (
	ReadCoils          = 1
	ReadDiscrete       = 2
	ReadHolding        = 3
	ReadInput          = 4
	WriteCoil          = 5
	WriteRegister      = 6
	WriteCoils         = 15
	WriteRegisters     = 16
	maxReadRegisters   = 125
	maxReadBits        = 2000
	maxWriteRegisters  = 123
	maxWriteBits       = 1968
	exceptionBit       = 0x80
	IllegalFunction    = 1
	IllegalDataAddress = 2
	IllegalDataValue   = 3
	DeviceFailure      = 4
)

var exceptions = map[byte]string{
	1: "illegal function", 2: "illegal data address", 3: "illegal data value", 4: "server device failure",
	5: "acknowledge", 6: "server device busy", 8: "memory parity error", 10: "gateway path unavailable",
	11: "gateway target device failed to respond",
}

// Exception is an exception reply.
type Exception struct{ Function, Code byte }

func (e *Exception) Error() string {
	name, ok := exceptions[e.Code]
	if !ok {
		name = "unknown exception"
	}
	return fmt.Sprintf("exception %d (%s) to function %d", e.Code, name, e.Function)
}

func u16(b []byte) uint16 { return uint16(b[0])<<8 | uint16(b[1]) }

// ReadRequest is the PDU reading count items from addr with function fc (1-4).
func ReadRequest(fc byte, addr, count uint16) []byte {
	return []byte{fc, byte(addr >> 8), byte(addr), byte(count >> 8), byte(count)}
}

// WriteSingle is a write coil (5; v is 0 or 1) or write register (6) PDU.
func WriteSingle(fc byte, addr, v uint16) []byte {
	if fc == WriteCoil && v != 0 {
		v = 0xff00
	}
	return []byte{fc, byte(addr >> 8), byte(addr), byte(v >> 8), byte(v)}
}

// WriteMultiple is a write coils (15; values 0 or 1) or write registers
// (16) PDU.
func WriteMultiple(fc byte, addr uint16, vals []uint16) []byte {
	n := len(vals)
	p := []byte{fc, byte(addr >> 8), byte(addr), byte(n >> 8), byte(n)}
	if fc == WriteCoils {
		bits := make([]byte, (n+7)/8)
		for i, v := range vals {
			if v != 0 {
				bits[i/8] |= 1 << (i % 8)
			}
		}
		return append(append(p, byte(len(bits))), bits...)
	}
	p = append(p, byte(2*n))
	for _, v := range vals {
		p = append(p, byte(v>>8), byte(v))
	}
	return p
}

// TCP wraps a PDU in an MBAP header.
func TCP(tid uint16, unit byte, pdu []byte) []byte {
	n := len(pdu) + 1
	return append([]byte{byte(tid >> 8), byte(tid), 0, 0, byte(n >> 8), byte(n), unit}, pdu...)
}

// RTU wraps a PDU with the unit and the CRC.
func RTU(unit byte, pdu []byte) []byte {
	f := append([]byte{unit}, pdu...)
	c := proto.CRC16Modbus(f)
	return append(f, byte(c), byte(c>>8))
}

// Unwrap takes a whole frame (as the modbus-tcp or modbus-rtu framing cut
// it) apart.
func Unwrap(frame []byte, rtu bool) (tid uint16, unit byte, pdu []byte, err error) {
	if rtu {
		if len(frame) < 4 {
			return 0, 0, nil, errors.New("modbus: a short RTU frame")
		}
		return 0, frame[0], frame[1 : len(frame)-2], nil
	}
	if len(frame) < 8 {
		return 0, 0, nil, errors.New("modbus: a short TCP frame")
	}
	return u16(frame), frame[6], frame[7:], nil
}

// Response reads the answer pdu to the request req: the registers read (as
// numbers), the bits read (as 0 or 1), nothing for a write, or an
// *Exception, or an error for an answer that does not fit the request.
func Response(req, pdu []byte) ([]uint16, error) {
	if len(pdu) == 0 {
		return nil, errors.New("modbus: an empty response")
	}
	fc := req[0]
	if pdu[0] == fc|exceptionBit && len(pdu) >= 2 {
		return nil, &Exception{Function: fc, Code: pdu[1]}
	}
	if pdu[0] != fc {
		return nil, fmt.Errorf("modbus: a response to function %d, not %d", pdu[0], fc)
	}
	switch fc {
	case ReadCoils, ReadDiscrete, ReadHolding, ReadInput:
		count := int(u16(req[3:]))
		if len(pdu) < 2 || int(pdu[1]) != len(pdu)-2 {
			return nil, errors.New("modbus: a read response whose byte count is wrong")
		}
		data := pdu[2:]
		out := make([]uint16, count)
		if fc == ReadHolding || fc == ReadInput {
			if len(data) != 2*count {
				return nil, fmt.Errorf("modbus: %d registers asked, %d bytes came", count, len(data))
			}
			for i := range out {
				out[i] = u16(data[2*i:])
			}
			return out, nil
		}
		if len(data) != (count+7)/8 {
			return nil, fmt.Errorf("modbus: %d bits asked, %d bytes came", count, len(data))
		}
		for i := range out {
			out[i] = uint16(data[i/8]>>(i%8)) & 1
		}
		return out, nil
	case WriteCoil, WriteRegister, WriteCoils, WriteRegisters:
		if len(pdu) != 5 || u16(pdu[1:]) != u16(req[1:]) {
			return nil, errors.New("modbus: a write response that does not echo the request")
		}
		return nil, nil
	}
	return nil, fmt.Errorf("modbus: function %d is not supported", fc)
}

// Table is one of a server's four tables.
type Table int

const (
	Coils Table = iota
	Discrete
	Input
	Holding
)

// Map is what a server serves: a value per table and address, present or
// not (an absent address is an illegal data address). Write reports
// whether the address takes writes.
type Map interface {
	Read(t Table, addr uint16) (uint16, bool)
	Write(t Table, addr uint16, v uint16) bool
}

// Tables is a Map that may lack whole tables: a request to a table it
// lacks is an illegal function (a device without coils), not an illegal
// data address.
type Tables interface {
	Has(t Table) bool
}

// lacks reports whether m says it has no table t.
func lacks(m Map, t Table) bool {
	tm, ok := m.(Tables)
	return ok && !tm.Has(t)
}

func exception(fc, code byte) []byte { return []byte{fc | exceptionBit, code} }

// Serve answers a request PDU from m.
func Serve(req []byte, m Map) []byte {
	if len(req) == 0 {
		return exception(0, IllegalFunction)
	}
	fc := req[0]
	if len(req) < 5 {
		switch fc {
		case ReadCoils, ReadDiscrete, ReadHolding, ReadInput, WriteCoil, WriteRegister, WriteCoils, WriteRegisters:
			return exception(fc, IllegalDataValue)
		}
		return exception(fc, IllegalFunction)
	}
	addr, count := u16(req[1:]), u16(req[3:])
	switch fc {
	case ReadCoils, ReadDiscrete, ReadHolding, ReadInput:
		t := map[byte]Table{ReadCoils: Coils, ReadDiscrete: Discrete, ReadHolding: Holding, ReadInput: Input}[fc]
		regs := t == Holding || t == Input
		if lacks(m, t) {
			return exception(fc, IllegalFunction)
		}
		if count == 0 || (regs && count > maxReadRegisters) || (!regs && count > maxReadBits) {
			return exception(fc, IllegalDataValue)
		}
		vals := make([]uint16, count)
		for i := range vals {
			v, ok := m.Read(t, addr+uint16(i))
			if !ok || int(addr)+i > 0xffff {
				return exception(fc, IllegalDataAddress)
			}
			vals[i] = v
		}
		if regs {
			out := []byte{fc, byte(2 * count)}
			for _, v := range vals {
				out = append(out, byte(v>>8), byte(v))
			}
			return out
		}
		bits := make([]byte, (count+7)/8)
		for i, v := range vals {
			if v != 0 {
				bits[i/8] |= 1 << (i % 8)
			}
		}
		return append([]byte{fc, byte(len(bits))}, bits...)
	case WriteCoil, WriteRegister:
		t, v := Holding, count
		if fc == WriteCoil {
			if v != 0 && v != 0xff00 {
				return exception(fc, IllegalDataValue)
			}
			t, v = Coils, v>>15&1
		}
		if lacks(m, t) {
			return exception(fc, IllegalFunction)
		}
		if !m.Write(t, addr, v) {
			return exception(fc, IllegalDataAddress)
		}
		return append([]byte{}, req[:5]...)
	case WriteCoils, WriteRegisters:
		if len(req) < 6 || int(req[5]) != len(req)-6 || count == 0 {
			return exception(fc, IllegalDataValue)
		}
		data := req[6:]
		t := Holding
		if fc == WriteCoils {
			t = Coils
			if count > maxWriteBits || len(data) != (int(count)+7)/8 {
				return exception(fc, IllegalDataValue)
			}
		} else if count > maxWriteRegisters || len(data) != 2*int(count) {
			return exception(fc, IllegalDataValue)
		}
		if lacks(m, t) {
			return exception(fc, IllegalFunction)
		}
		for i := 0; i < int(count); i++ { // all or nothing: check first
			if _, ok := m.Read(t, addr+uint16(i)); !ok || int(addr)+i > 0xffff {
				return exception(fc, IllegalDataAddress)
			}
		}
		for i := 0; i < int(count); i++ {
			v := uint16(data[i/8]>>(i%8)) & 1
			if t == Holding {
				v = u16(data[2*i:])
			}
			if !m.Write(t, addr+uint16(i), v) {
				return exception(fc, IllegalDataAddress)
			}
		}
		return append([]byte{}, req[:5]...)
	}
	return exception(fc, IllegalFunction)
}
