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
package bench
