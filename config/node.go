package config

import "os"

// NodeID is the name this gateway goes by: node.id, or the host name when
// node.id is unset. It is the one place that default lives; Build hands it
// to every sink whose own node name (node, client_id, edge_node_id) is
// empty, so rows, bodies, message ids and Sparkplug topics all name the
// node the same way. Empty only when node.id is unset and the host name
// cannot be read.
func (c *Config) NodeID() string {
	if c.Node.ID != "" {
		return c.Node.ID
	}
	host, _ := os.Hostname()
	return host
}
