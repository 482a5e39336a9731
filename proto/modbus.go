package proto

import (
	"errors"
	"fmt"
)

// Modbus framings (issue 13). A message is a whole frame as on the wire:
// modbus-tcp, the MBAP header (transaction, protocol 0, length, unit) and
// the PDU; modbus-rtu, the unit, the PDU and the CRC. Encode checks that
// the message is exactly one such frame.

type modbusTCPFramer struct{}

func (modbusTCPFramer) String() string { return "modbus-tcp" }

// modbusTCPLen is the whole frame's length from its MBAP header, 0 while
// the header is not all here.
func modbusTCPLen(b []byte) (int, error) {
	if len(b) < 7 {
		return 0, nil
	}
	if b[2] != 0 || b[3] != 0 {
		return 0, fmt.Errorf("modbus-tcp: protocol id %d, not 0 (not Modbus)", int(b[2])<<8|int(b[3]))
	}
	n := int(b[4])<<8 | int(b[5])
	if n < 2 || n > 254 {
		return 0, fmt.Errorf("modbus-tcp: length field %d, not 2 to 254", n)
	}
	return 6 + n, nil
}

func (modbusTCPFramer) Decode(buf []byte) ([]byte, int, error) {
	n, err := modbusTCPLen(buf)
	if err != nil || n == 0 || len(buf) < n {
		return nil, 0, err
	}
	return buf[:n], n, nil
}

func (modbusTCPFramer) Encode(dst, msg []byte) ([]byte, error) {
	n, err := modbusTCPLen(msg)
	if err == nil && n != len(msg) {
		err = fmt.Errorf("modbus-tcp: a %d-byte message whose header says %d", len(msg), n)
	}
	if err != nil {
		return dst, err
	}
	return append(dst, msg...), nil
}

type modbusRTUFramer struct{}

func (modbusRTUFramer) String() string { return "modbus-rtu" }

// CRC16Modbus is the CRC of Modbus RTU frames (sent low byte first).
func CRC16Modbus(b []byte) uint16 {
	crc := uint16(0xffff)
	for _, c := range b {
		crc ^= uint16(c)
		for range 8 {
			if crc&1 != 0 {
				crc = crc>>1 ^ 0xa001
			} else {
				crc >>= 1
			}
		}
	}
	return crc
}

// ModbusCRCOK reports whether the RTU frame f (4 bytes at least) ends in
// the CRC-16 of what precedes it.
func ModbusCRCOK(f []byte) bool {
	n := len(f)
	return n >= 4 && CRC16Modbus(f[:n-2]) == uint16(f[n-2])|uint16(f[n-1])<<8
}

// rtuLens are the lengths a frame starting with b may have: RTU has no
// length field, and a request and its response differ, so each length the
// function code allows is a candidate, told apart by the CRC. 0 means the
// byte giving the length is not here yet.
func rtuLens(b []byte) []int {
	fc := b[1]
	at := func(i, plus int) int { // a byte count at b[i]
		if len(b) <= i {
			return 0
		}
		return i + 1 + int(b[i]) + plus
	}
	switch {
	case fc&0x80 != 0:
		return []int{5} // exception: unit, fc, code, CRC
	case fc >= 1 && fc <= 4:
		return []int{8, at(2, 2)}
	case fc == 5 || fc == 6 || fc == 8:
		return []int{8}
	case fc == 7:
		return []int{4, 5}
	case fc == 11:
		return []int{4, 8}
	case fc == 15 || fc == 16:
		return []int{8, at(6, 2)}
	case fc == 17:
		return []int{4, at(2, 2)}
	case fc == 22:
		return []int{10}
	case fc == 23:
		return []int{at(10, 2), at(2, 2)}
	}
	return nil
}

// maxRTU is the largest RTU frame.
const maxRTU = 256

func (modbusRTUFramer) Decode(buf []byte) ([]byte, int, error) {
	if len(buf) < 2 {
		return nil, 0, nil
	}
	lens := rtuLens(buf)
	if lens == nil {
		return nil, 0, fmt.Errorf("modbus-rtu: unknown function code %d", buf[1])
	}
	waiting := false
	for _, n := range lens {
		switch {
		case n == 0 || n > len(buf):
			waiting = true
		case n <= maxRTU && ModbusCRCOK(buf[:n]):
			return buf[:n], n, nil
		}
	}
	if waiting && len(buf) < maxRTU {
		return nil, 0, nil
	}
	return nil, 0, errors.New("modbus-rtu: no frame with a valid CRC (noise on the line, or another protocol)")
}

func (modbusRTUFramer) Encode(dst, msg []byte) ([]byte, error) {
	if len(msg) < 4 || len(msg) > maxRTU || !ModbusCRCOK(msg) {
		return dst, errors.New("modbus-rtu: the message is not one frame with its CRC")
	}
	return append(dst, msg...), nil
}

// ModbusTCP and ModbusRTU are the modbus-tcp and modbus-rtu framings.
var (
	ModbusTCP Framer = modbusTCPFramer{}
	ModbusRTU Framer = modbusRTUFramer{}
)
