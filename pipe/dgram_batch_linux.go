//go:build linux && (amd64 || arm64)

package pipe

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strconv"
	"syscall"
	"unsafe"
)

// batchSlots is how many datagrams one recvmmsg(2) call may return: at
// full rate one system call (and one wake-up) then serves a burst rather
// than one datagram. Each slot holds a datagram of any size (64 KiB); the
// kernel touches only the pages a datagram fills, so small datagrams cost
// little resident memory.
const (
	batchSlots = 32
	slotSize   = 64 << 10
)

// mmsghdr is struct mmsghdr on 64-bit Linux.
type mmsghdr struct {
	hdr syscall.Msghdr
	len uint32
	_   [4]byte
}

// batchSource reads UDP datagrams up to batchSlots at a time.
type batchSource struct {
	raw   syscall.RawConn
	flush func() error
	buf   []byte
	hdrs  [batchSlots]mmsghdr
	iovs  [batchSlots]syscall.Iovec
	names [batchSlots]syscall.RawSockaddrAny
	n, i  int               // datagrams in the batch, the next one
	zones map[uint32]string // interface names of IPv6 scopes seen
}

// newDatagramSource batches UDP sockets with recvmmsg; other sockets read
// one datagram at a time.
func newDatagramSource(pc net.PacketConn, flush func() error) datagramSource {
	uc, ok := pc.(*net.UDPConn)
	if !ok {
		return &plainSource{pc: pc, buf: make([]byte, 64<<10), flush: flush}
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return &plainSource{pc: pc, buf: make([]byte, 64<<10), flush: flush}
	}
	b := &batchSource{raw: raw, flush: flush, buf: make([]byte, batchSlots*slotSize)}
	for i := range b.hdrs {
		b.iovs[i].Base = &b.buf[i*slotSize]
		b.iovs[i].SetLen(slotSize)
		b.hdrs[i].hdr.Iov = &b.iovs[i]
		b.hdrs[i].hdr.Iovlen = 1
		b.hdrs[i].hdr.Name = (*byte)(unsafe.Pointer(&b.names[i]))
	}
	return b
}

func (b *batchSource) next() ([]byte, netip.AddrPort, net.Addr, error) {
	for b.i >= b.n {
		if err := b.fill(); err != nil {
			return nil, netip.AddrPort{}, nil, err
		}
	}
	i := b.i
	b.i++
	data := b.buf[i*slotSize : i*slotSize+int(b.hdrs[i].len)]
	return data, b.addrPort(&b.names[i]), nil, nil
}

// fill reads the next batch, flushing the output once before it waits.
func (b *batchSource) fill() error {
	for i := range b.hdrs {
		b.hdrs[i].hdr.Namelen = syscall.SizeofSockaddrAny
		b.hdrs[i].hdr.Flags = 0
		b.hdrs[i].len = 0
	}
	var (
		n     uintptr
		errno syscall.Errno
		tried bool
	)
	err := b.raw.Read(func(fd uintptr) bool {
		n, _, errno = syscall.Syscall6(syscall.SYS_RECVMMSG, fd,
			uintptr(unsafe.Pointer(&b.hdrs[0])), batchSlots, syscall.MSG_DONTWAIT, 0, 0)
		if errno == syscall.EAGAIN || errno == syscall.EWOULDBLOCK {
			if !tried && b.flush != nil {
				b.flush()
			}
			tried = true
			return false // wait until readable, then try again
		}
		return errno != syscall.EINTR
	})
	if err != nil {
		return err
	}
	if errno != 0 {
		return &net.OpError{Op: "read", Net: "udp", Err: errno}
	}
	b.n, b.i = int(n), 0
	return nil
}

func (b *batchSource) addrPort(sa *syscall.RawSockaddrAny) netip.AddrPort {
	switch sa.Addr.Family {
	case syscall.AF_INET:
		in := (*syscall.RawSockaddrInet4)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&in.Port))[:])
		return netip.AddrPortFrom(netip.AddrFrom4(in.Addr), port)
	case syscall.AF_INET6:
		in := (*syscall.RawSockaddrInet6)(unsafe.Pointer(sa))
		port := binary.BigEndian.Uint16((*[2]byte)(unsafe.Pointer(&in.Port))[:])
		ip := netip.AddrFrom16(in.Addr)
		if in.Scope_id != 0 {
			ip = ip.WithZone(b.zone(in.Scope_id))
		}
		return netip.AddrPortFrom(ip, port)
	}
	return netip.AddrPort{}
}

// zone names an IPv6 scope as net does: the interface's name, else its
// index.
func (b *batchSource) zone(id uint32) string {
	if z, ok := b.zones[id]; ok {
		return z
	}
	z := strconv.Itoa(int(id))
	if ifi, err := net.InterfaceByIndex(int(id)); err == nil {
		z = ifi.Name
	}
	if b.zones == nil {
		b.zones = map[uint32]string{}
	}
	b.zones[id] = z
	return z
}
