package link

import (
	"net"
	"syscall"
)

// setMulticastInterface picks the interface multicast datagrams leave by.
func setMulticastInterface(rc syscall.RawConn, ifi *net.Interface, v6 bool) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		if v6 {
			serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IPV6, syscall.IPV6_MULTICAST_IF, ifi.Index)
			return
		}
		serr = syscall.SetsockoptIPMreqn(int(fd), syscall.IPPROTO_IP, syscall.IP_MULTICAST_IF, &syscall.IPMreqn{Ifindex: int32(ifi.Index)})
	})
	if err != nil {
		return err
	}
	return serr
}
