package proto

import (
	"bytes"
	"strings"
	"testing"
)

func rtu(b ...byte) []byte {
	c := CRC16Modbus(b)
	return append(b, byte(c), byte(c>>8))
}

func TestModbusCRC(t *testing.T) {
	if c := CRC16Modbus([]byte("123456789")); c != 0x4b37 {
		t.Fatalf("CRC %#x, want 0x4b37", c)
	}
	// a read holding registers request from the spec's examples: 01 03 00 00 00 0a c5 cd
	if got := rtu(1, 3, 0, 0, 0, 10); !bytes.Equal(got, []byte{1, 3, 0, 0, 0, 10, 0xc5, 0xcd}) {
		t.Fatalf("% x", got)
	}
}

func TestModbusRTUFramer(t *testing.T) {
	req := rtu(1, 3, 0, 0, 0, 2)
	resp := rtu(1, 3, 4, 0, 1, 0, 2)
	exc := rtu(1, 0x83, 2)
	wr := rtu(1, 16, 0, 1, 0, 2, 4, 0, 7, 0, 8)
	stream := bytes.Join([][]byte{req, resp, exc, wr, rtu(1, 16, 0, 1, 0, 2)}, nil)
	var got [][]byte
	for len(stream) > 0 {
		m, n, err := ModbusRTU.Decode(stream)
		if err != nil || n == 0 {
			t.Fatalf("Decode: %v (n %d) with % x left", err, n, stream)
		}
		got = append(got, m)
		stream = stream[n:]
	}
	if len(got) != 5 || !bytes.Equal(got[1], resp) || !bytes.Equal(got[3], wr) {
		t.Fatalf("frames % x", got)
	}
	if _, n, err := ModbusRTU.Decode(resp[:5]); n != 0 || err != nil {
		t.Fatalf("a partial frame: %d %v", n, err)
	}
	bad := append([]byte{}, req...)
	bad[7] ^= 1
	if _, _, err := ModbusRTU.Decode(bad); err == nil || !strings.Contains(err.Error(), "CRC") {
		t.Fatalf("a bad CRC: %v", err)
	}
	if _, _, err := ModbusRTU.Decode([]byte{1, 99, 0, 0}); err == nil {
		t.Fatal("an unknown function code was taken")
	}
	if _, err := ModbusRTU.Encode(nil, req[:6]); err == nil {
		t.Fatal("Encode took a frame without its CRC")
	}
}

func TestModbusTCPFramer(t *testing.T) {
	f := []byte{0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 2}
	m, n, err := ModbusTCP.Decode(append(f, 0, 2))
	if err != nil || n != 12 || !bytes.Equal(m, f) {
		t.Fatalf("%v %d % x", err, n, m)
	}
	if _, n, _ := ModbusTCP.Decode(f[:9]); n != 0 {
		t.Fatal("a partial frame")
	}
	if _, _, err := ModbusTCP.Decode([]byte{0, 1, 0, 5, 0, 6, 1}); err == nil {
		t.Fatal("protocol id 5 taken")
	}
	if _, err := ModbusTCP.Encode(nil, f[:10]); err == nil {
		t.Fatal("Encode took a short frame")
	}
	if sp, err := Parse("modbus-rtu", nil); err != nil || Name(sp) != "modbus-rtu" {
		t.Fatal(err)
	}
}
