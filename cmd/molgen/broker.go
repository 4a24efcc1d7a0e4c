package main

import (
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/molgen/molgen/internal/broker"
)

func runBroker(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("broker", stderr, "[-addr host:port]")
	addr := fs.String("addr", "127.0.0.1:9092", "address to listen on")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return &usageError{"broker takes no arguments"}
	}
	b, err := broker.Start(*addr)
	if err != nil {
		return err
	}
	defer b.Close()
	fmt.Fprintf(stdout, "molgen: embedded Kafka-protocol broker (kfake) listening on %s; Ctrl-C stops it\n", b.Addr())
	fmt.Fprintf(stdout, "molgen: it keeps everything in memory; use real Kafka (scripts/kafka/kafka.sh) for anything that matters\n")
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	<-sig
	fmt.Fprintln(stdout, "molgen: broker stopped")
	return nil
}
