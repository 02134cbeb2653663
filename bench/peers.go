package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/weir-edge/weir/internal/broker"
	"github.com/weir-edge/weir/sim"
)

// RunningPeers are load generators started by StartPeers.
type RunningPeers struct {
	Peers
	servers sim.Servers
	broker  *broker.Broker
}

// StartPeers serves n bench devices with tags registers each on loopback
// and, when withBroker, an embedded MQTT broker.
func StartPeers(ctx context.Context, n, tags int, withBroker bool, log *slog.Logger) (*RunningPeers, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	devs := make([]sim.Device, n)
	for i := range devs {
		d, err := sim.NewBenchDevice(int64(i+1), tags)
		if err != nil {
			return nil, err
		}
		devs[i] = d
	}
	servers, err := sim.ServeMany(ctx, "127.0.0.1", time.Second, devs, log)
	if err != nil {
		return nil, fmt.Errorf("bench: devices: %w", err)
	}
	rp := &RunningPeers{servers: servers}
	rp.Devices = servers.Addrs()
	if withBroker {
		b, err := broker.Start("127.0.0.1:0", log)
		if err != nil {
			return nil, errors.Join(err, servers.Close())
		}
		rp.broker = b
		rp.Broker = b.Addr()
	}
	return rp, nil
}

// Close stops every peer.
func (rp *RunningPeers) Close() error {
	err := rp.servers.Close()
	if rp.broker != nil {
		err = errors.Join(err, rp.broker.Close())
	}
	return err
}
