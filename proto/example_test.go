package proto_test

import (
	"fmt"
	"io"
	"strings"

	"github.com/wirecat-dev/wirecat/proto"
)

func ExampleParse() {
	f, err := proto.Parse(`delim:\x03`, nil)
	if err != nil {
		panic(err)
	}
	wire, _ := f.Encode(nil, []byte("T=21.5"))
	fmt.Printf("%s %q\n", proto.Name(f), wire)

	_, err = proto.Parse("len:u24", nil)
	fmt.Println(err)
	// Output:
	// delim:\x03 "T=21.5\x03"
	// bad framing "len:u24": unknown length prefix "u24"; valid forms: raw, line, crlf, delim:SEP, len:u8|u16be|u16le|u32be|u32le|varint, fixed:N, slip, cobs, modbus-tcp, modbus-rtu, lua:FILE
}

func ExampleUnescape() {
	b, _ := proto.Unescape(`GET / HTTP/1.0\r\n\r\n`)
	fmt.Printf("%q\n", b)
	_, err := proto.Unescape(`T=21\q`)
	fmt.Println(err)
	// Output:
	// "GET / HTTP/1.0\r\n\r\n"
	// unknown escape "\\q" at position 5 (valid: \n \r \t \0 \\ \xHH)
}

func ExampleParseHex() {
	b, _ := proto.ParseHex("0x01 02:ff")
	fmt.Printf("% x\n", b)
	// Output: 01 02 ff
}

func ExampleReader() {
	f, _ := proto.Parse("line", nil)
	r := proto.NewReader(strings.NewReader("temp=21\r\nhum=40\nlast"), f, 0)
	for {
		msg, err := r.Next()
		if err == io.EOF {
			break
		}
		fmt.Printf("%q\n", msg)
	}
	// Output:
	// "temp=21"
	// "hum=40"
	// "last"
}
