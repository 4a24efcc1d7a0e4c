package nodemain

import (
	"github.com/molgen/molgen/runtime"
	"github.com/molgen/molgen/runtime/placement"
)

// applySecurity merges the security flags over the placement's kafka.tls
// and kafka.sasl into opts.
func applySecurity(f *placement.SecurityFlags, pl *placement.Placement, opts *runtime.Options) error {
	var placedTLS *placement.TLS
	var placedSASL *placement.SASL
	if pl != nil {
		placedTLS, placedSASL = pl.Kafka.TLS, pl.Kafka.SASL
	}
	t, s, err := f.Apply(placedTLS, placedSASL)
	if err != nil {
		return err
	}
	opts.TLS, opts.SASL = t, s
	opts.KafkaSettingNames = f.Names()
	if pl != nil && t == nil && pl.Kafka.TLS != nil {
		// -kafka-tls=false: a placement without TLS.
		c := *pl
		c.Kafka.TLS = nil
		opts.Placement = &c
	}
	return nil
}
