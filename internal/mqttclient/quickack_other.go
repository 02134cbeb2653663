//go:build !linux

package mqttclient

const quickAckSupported = false

func setQuickAck(uintptr) {}
