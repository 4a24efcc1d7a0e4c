//go:build !unix

package kafka

import (
	"errors"
	"net"
	"os"
	"time"
)

// socketAlive waits a millisecond for something to read: alive when
// nothing comes (a read at a deadline already past would not look).
func socketAlive(nc net.Conn) bool {
	nc.SetReadDeadline(time.Now().Add(time.Millisecond))
	var b [1]byte
	_, err := nc.Read(b[:])
	return errors.Is(err, os.ErrDeadlineExceeded)
}
