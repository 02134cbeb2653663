package config

import (
	"strings"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/internal/mqttaddr"
)

// mqttClient is one MQTT connection the configuration opens: where it is
// configured (the key path of its block), the broker and its client id
// with the component's default applied.
type mqttClient struct {
	at, broker, id string
}

// mqttClients lists every MQTT connection of c: MQTT sources and sinks,
// Sparkplug sinks, write_commands and alarms.commands.
func (c *Config) mqttClients() []mqttClient {
	var out []mqttClient
	add := func(at, url, id string) {
		if url == "" || id == "" {
			return // reported by the block's own validation
		}
		broker := url
		if addr, useTLS, err := mqttaddr.Parse(url); err == nil {
			broker = addr
			if useTLS {
				broker = "tls://" + addr
			}
		}
		out = append(out, mqttClient{at: at, broker: strings.ToLower(broker), id: id})
	}
	for i, s := range c.Sources {
		if s.MQTT != nil {
			add(conf.Index("sources", i)+".mqtt", s.MQTT.URL, s.MQTT.ClientID)
		}
	}
	for i, s := range c.Sinks {
		at := conf.Index("sinks", i)
		if m := s.MQTT; m != nil {
			id := m.ClientID
			if id == "" {
				id = c.NodeID() // the sink's default (SetNode)
			}
			add(at+".mqtt", m.URL, id)
		}
		if sp := s.Sparkplug; sp != nil {
			id := sp.ClientID
			if id == "" {
				node := sp.EdgeNodeID
				if node == "" {
					node = c.NodeID()
				}
				id = sp.GroupID + "_" + node // the sink's default
			}
			add(at+".sparkplug", sp.URL, id)
		}
	}
	if w := c.WriteCommands; w != nil {
		add("write_commands", w.URL, w.ClientID)
	}
	if a := c.Alarms.Commands; a != nil {
		add("alarms.commands", a.URL, a.ClientID)
	}
	return out
}

// validateMQTTClients refuses two MQTT connections to one broker with one
// client id: the broker keeps one session per id, so each connect throws
// the other off, for ever, and both lose data. Each of the two is
// reported at its own block (so at both lines), naming the other.
func (c *Config) validateMQTTClients(errs *conf.Errors) {
	seen := map[[2]string]string{}
	for _, m := range c.mqttClients() {
		k := [2]string{m.broker, m.id}
		other, dup := seen[k]
		if !dup {
			seen[k] = m.at
			continue
		}
		msg := "two MQTT clients on %s with client_id %q (%s and %s): the broker keeps one session per id, so they throw each other off; give each its own client_id"
		errs.Addf(other+".client_id", msg, m.broker, m.id, other, m.at)
		errs.Addf(m.at+".client_id", msg, m.broker, m.id, other, m.at)
	}
}
