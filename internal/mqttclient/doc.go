// Package mqttclient is the one MQTT client of Weir: the broker connection
// keys every MQTT component shares (Broker, or Endpoint for the command
// subscribers), embedded inline in the component's block, and a connection
// (Conn) over both protocol versions: MQTT 5 on paho.golang's low-level
// client, MQTT 3.1.1 on paho.mqtt.golang.
//
// The lifecycle follows the rest of Weir: Validate does no I/O; Options
// reads the password and certificates at connect time, so rotated
// credentials apply on the next connection; Dial connects once within its
// context. A Conn is never reconnected and the libraries' own reconnect,
// retry and queueing are off: when Done closes, the component (or the
// engine, for sinks) dials again with backoff and jitter, and data stays
// in the durable buffer rather than in a library's memory.
//
// Every connection bounds what the broker can send (Options.MaxPacketSize):
// MQTT 5 announces the limit on CONNECT, and for both versions a reader
// under the library checks each packet's fixed header before the library
// reads the packet, skipping an oversized PUBLISH (acknowledged, delivered
// as Message.Oversize) and closing on any other oversized packet; see
// limit.go.
//
// Caveats: with MQTT 3.1.1 the library's CONNECT wait knows no context, so
// Dial closes the socket when the context ends; a publish handed over while
// the connection drops may block until the write timeout.
//
// Package mqtttest has the embedded broker the components' tests share.
package mqttclient
