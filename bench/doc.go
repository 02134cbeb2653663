// Package bench is Weir's load harness (`weir bench`): it starts N simulated
// Modbus devices with M registers each, runs the real pipeline — Modbus
// source with request coalescing, engine, buffer, MQTT sink — to a broker,
// and reports throughput, end-to-end latency (sample taken → broker
// confirmed the publish: PUBACK at QoS 1), CPU and peak RSS.
//
// The load is open loop: devices are polled on a fixed interval chosen so
// that devices × tags / interval equals the offered rate, whatever the
// gateway manages to deliver; overruns are counted, never compensated.
//
// By default the simulated devices and the embedded broker run in a child
// process (the same binary, `weir bench -peers`), so the CPU and RSS figures
// are the gateway's own.
//
// With -source opcua the peer is an OPC UA server (the simulator's) with N
// changing variables and the gateway subscribes to them; latency is then
// measured from the server's source timestamp, so up to one publishing
// interval of waiting is part of it by protocol (see opcua.go).
//
// With -outage the uplink to the broker is cut through a proxy for that
// long after the measured window: the backlog is held in the durable
// buffer, then the drain rate and the live latency during the drain are
// measured.
//
// With Routes 3 the same run carries three sinks on different routes (all
// tags by pattern; a fifth of the devices behind a deadband; a one-minute
// window) and the figures are the first sink's (see routes.go).
//
// RunBandwidth (`weir bench -bandwidth`) measures bytes instead of speed:
// the demo plant or bench devices into eight sinks side by side (JSON per
// tag, JSON batch, Sparkplug B with and without report by exception, and
// JSON behind deadband, window and downsample routes, Sparkplug behind the
// deadband), counted per client
// by a hook in its own embedded broker (WireBytes), framing included, and
// divided by the samples the sources produced in the same window.
package bench
