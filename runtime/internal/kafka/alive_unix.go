//go:build unix

package kafka

import (
	"net"
	"syscall"
)

// socketAlive peeks at a socket without blocking: alive when nothing is
// there to read (no data, no end of stream, no error).
func socketAlive(nc net.Conn) bool {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return true // cannot tell: the write will say
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	alive := false
	var b [1]byte
	err = rc.Read(func(fd uintptr) bool {
		_, _, e := syscall.Recvfrom(int(fd), b[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		alive = e == syscall.EAGAIN || e == syscall.EWOULDBLOCK
		return true // done: never wait
	})
	return err == nil && alive
}
