package link_test

import (
	"fmt"

	"github.com/wirecat-dev/wirecat/link"
)

func ExampleParse() {
	for _, s := range []string{"127.0.0.1:5000", ":5000", "[::1]:80", "tls://localhost:https", "unix:///tmp/d.sock", "127.0.0.1"} {
		a, err := link.Parse(s, false)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(a, a.Network(), a.Stream())
	}
	a, _ := link.Parse("10.0.0.7:5683", true) // -u
	fmt.Println(a)
	// Output:
	// tcp://127.0.0.1:5000 tcp true
	// tcp://:5000 tcp true
	// tcp://[::1]:80 tcp true
	// tls://localhost:443 tcp true
	// unix:///tmp/d.sock unix true
	// bad address "127.0.0.1": missing port (want host:port, e.g. 127.0.0.1:5000)
	// udp://10.0.0.7:5683
}
