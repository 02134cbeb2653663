package secevents

import (
	"context"
	"testing"
	"time"
)

// What Record costs the component that reports (sinks and syslog on,
// the syslog queue never drained: the enqueue or the drop is measured).
func BenchmarkRecord(b *testing.B) {
	s, err := New(Config{MaxPending: MaxQueue, Syslog: &SyslogConfig{Address: "127.0.0.1:9", Protocol: "udp", Queue: MaxQueue}}, "line-7", nil)
	if err != nil {
		b.Fatal(err)
	}
	ev := event(1)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		s.Record(context.Background(), ev)
		if i%10_000 == 0 {
			s.Flush(time.Now(), nil)
		}
	}
}

// Messages per second to a real collector over tcp on this machine.
func BenchmarkSyslogTCP(b *testing.B) {
	r := listenStream(b, "127.0.0.1:0", nil)
	defer r.close()
	s, err := New(Config{ToSinks: boolp(false), Syslog: &SyslogConfig{Address: r.addr, Protocol: "tcp", Queue: 100_000}}, "line-7", nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	ev := event(1)
	b.ResetTimer()
	for b.Loop() {
		s.Record(context.Background(), ev)
		<-r.msgs
	}
}
