package config

import (
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/weir-edge/weir/alarms"
	"github.com/weir-edge/weir/audit"
	"github.com/weir-edge/weir/auth"
	"github.com/weir-edge/weir/buffer/durable"
	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/processors/deadband"
	"github.com/weir-edge/weir/processors/derive"
	"github.com/weir-edge/weir/processors/downsample"
	"github.com/weir-edge/weir/processors/rate"
	"github.com/weir-edge/weir/processors/rename"
	"github.com/weir-edge/weir/processors/scale"
	"github.com/weir-edge/weir/processors/window"
	"github.com/weir-edge/weir/route"
	"github.com/weir-edge/weir/rules"
	"github.com/weir-edge/weir/secevents"
	"github.com/weir-edge/weir/sinks/historian"
	httpsink "github.com/weir-edge/weir/sinks/http"
	"github.com/weir-edge/weir/sinks/kafka"
	"github.com/weir-edge/weir/sinks/mqtt"
	natssink "github.com/weir-edge/weir/sinks/nats"
	"github.com/weir-edge/weir/sinks/postgres"
	"github.com/weir-edge/weir/sinks/sparkplug"
	"github.com/weir-edge/weir/sources/modbus"
	mqttsource "github.com/weir-edge/weir/sources/mqtt"
	"github.com/weir-edge/weir/sources/opcua"
	"github.com/weir-edge/weir/writegate"
	"github.com/weir-edge/weir/writegate/mqttcmd"
)

// Config is the whole configuration of one Weir node. It holds no runtime
// state, so two Configs can be compared for hot reload and shipped by a
// fleet manager.
type Config struct {
	Node Node `yaml:"node"`
	// DataDir holds the node's state: durable buffers under buffers/<sink>.
	// Default /var/lib/weir.
	DataDir string   `yaml:"data_dir"`
	Log     Log      `yaml:"log"`
	HTTP    HTTP     `yaml:"http"`
	Engine  Engine   `yaml:"engine"`
	Sources []Source `yaml:"sources"`
	// WriteGate is the top-level write_policies list: writes to devices are
	// denied unless a policy allows them.
	WriteGate writegate.Config `yaml:",inline"`
	// Audit is the tamper-evident trail of every write attempt.
	Audit AuditConfig `yaml:"audit"`
	// Rules are the top-level rules and rule_actions keys: conditions over
	// tags that set tags, raise alarms, publish events or write to devices.
	Rules rules.Config `yaml:",inline"`
	// Alarms configures the ISA-18.2 alarm manager.
	Alarms alarms.Config `yaml:"alarms"`
	// WriteCommands subscribes to an MQTT command topic whose write
	// commands go through the write gate; nil: none.
	WriteCommands *mqttcmd.Config `yaml:"write_commands"`
	// SecurityEvents carries security events to the sinks and to syslog
	// (secevents); the zero value sends them to the sinks only.
	SecurityEvents secevents.Config `yaml:"security_events"`
	// Processors run in order on every sample between sources and sinks
	// (the shared chain; rules and alarms see its output, every sample).
	Processors []Processor `yaml:"processors"`
	// Classification gives tags their class by pattern; a sink receives
	// no tag above its max_class, whatever its route says (package route).
	Classification route.ClassificationConfig `yaml:"classification"`
	Sinks          []Sink                     `yaml:"sinks"`
	// Auth configures who may use the HTTP API: local users, client
	// certificates, JWTs (API tokens need no configuration); nil: tokens
	// only.
	Auth *auth.Config `yaml:"auth"`
	// Hub makes this Weir a site that follows a fleet hub (config/hub.go);
	// nil: configured on the box only.
	Hub *Hub `yaml:"hub"`
}

// AuditConfig is the audit block; File defaults to
// <data_dir>/audit/writes.jsonl.
type AuditConfig = audit.Config

// Processor is one processing step: a name and exactly one type block.
type Processor struct {
	Name     string           `yaml:"name"`
	Scale    *scale.Config    `yaml:"scale"`
	Deadband *deadband.Config `yaml:"deadband"`
	Rate     *rate.Config     `yaml:"rate"`
	Window   *window.Config   `yaml:"window"`
	Derive   *derive.Config   `yaml:"derive"`
	// Rename and Downsample are mostly used in a sink's route, to re-root
	// the namespace and thin the stream for that sink only.
	Rename     *rename.Config     `yaml:"rename"`
	Downsample *downsample.Config `yaml:"downsample"`
}

// Node identifies this gateway.
type Node struct {
	// ID names the node in logs, status and (later) the fleet; default the
	// host name.
	ID string `yaml:"id"`
}

// Log configures log/slog output.
type Log struct {
	Level  string `yaml:"level"`  // debug, info (default), warn, error
	Format string `yaml:"format"` // text (default) or json
}

// HTTP configures the API listener (/metrics, /healthz, /readyz, /status,
// /api/v1/…). Empty Listen disables it. TLS, Host checks and limits:
// config/http.go and api/README.md.
type HTTP struct {
	Listen string `yaml:"listen"`
	// Insecure allows plain HTTP on a listen address other machines can
	// reach (tls.enabled: false); warned about at every start.
	Insecure bool    `yaml:"insecure"`
	TLS      HTTPTLS `yaml:"tls"`
	// AllowedHosts are names ("*.domain" for every subdomain) the API
	// answers to besides the loopback names, the listen address, this
	// machine's name and the certificate's names.
	AllowedHosts            []string `yaml:"allowed_hosts"`
	MaxConnectionsPerClient int      `yaml:"max_connections_per_client"`
	MaxConnections          int      `yaml:"max_connections"`
	MaxHeaderBytes          int      `yaml:"max_header_bytes"`
	MaxBodyBytes            int64    `yaml:"max_body_bytes"`
}

// Engine tunes the pipeline runtime.
type Engine struct {
	// DrainTimeout bounds delivery of buffered samples at shutdown; default
	// 10s.
	DrainTimeout time.Duration `yaml:"drain_timeout"`
}

// Source is one source: a name and exactly one protocol block.
type Source struct {
	Name   string             `yaml:"name"`
	Modbus *modbus.Config     `yaml:"modbus"`
	OPCUA  *opcua.Config      `yaml:"opcua"`
	MQTT   *mqttsource.Config `yaml:"mqtt"`
}

// Sink is one sink: a name, its buffer and exactly one protocol block.
type Sink struct {
	Name string `yaml:"name"`
	// BatchSize caps the samples per write; default 1000.
	BatchSize int               `yaml:"batch_size"`
	Buffer    BufferConfig      `yaml:"buffer"`
	MQTT      *mqtt.Config      `yaml:"mqtt"`
	HTTP      *httpsink.Config  `yaml:"http"`
	Postgres  *postgres.Config  `yaml:"postgres"`
	NATS      *natssink.Config  `yaml:"nats"`
	Kafka     *kafka.Config     `yaml:"kafka"`
	Sparkplug *sparkplug.Config `yaml:"sparkplug"`
	Historian *historian.Config `yaml:"historian"`
	// MaxClass is the highest class of tag the sink may receive (public,
	// internal, confidential, restricted); default internal.
	MaxClass string `yaml:"max_class"`
	// Route selects what the sink receives and runs its own processors;
	// nil: every tag up to MaxClass, unchanged.
	Route *Route `yaml:"route"`
}

// Route is a sink's `route:` block: a selection (include, exclude,
// quality) and the sink's own processor chain, run after the shared chain
// and before the sink's buffer.
type Route struct {
	route.Selection `yaml:",inline"`
	Processors      []Processor `yaml:"processors"`
}

// validate checks the route block under at: its selection, and its
// processors as strictly as the top-level ones (names unique within the
// route).
func (r *Route) validate(errs *conf.Errors, at string) {
	errs.AddPrefixed(at, r.Selection.Validate())
	seen := map[string]int{}
	for j, p := range r.Processors {
		pat := conf.Index(at+".processors", j)
		checkName(errs, pat, j, p.Name, seen)
		validateKind(errs, processorRows, &p, pat, "type")
	}
}

// BufferConfig configures the buffer between the pipeline and one sink:
// type disk (the default: durable store-and-forward, see buffer/durable)
// or type memory (a bounded ring lost on restart).
type BufferConfig struct {
	// The disk buffer's keys (type, max_bytes, max_age, policy, fsync, …).
	durable.Config `yaml:",inline"`
	// Capacity in samples, for type memory only; default 100000.
	Capacity int `yaml:"capacity"`
}

// Buffer types.
const (
	BufferDisk   = "disk"
	BufferMemory = "memory"
)

// IsMemory reports whether the sink's buffer is the in-memory one.
func (b *BufferConfig) IsMemory() bool { return b.Type == BufferMemory }

func (b *BufferConfig) validate() error {
	var errs conf.Errors
	switch b.Type {
	case BufferMemory:
		if b.Capacity < 0 || b.Capacity > MaxBufferCapacity {
			errs.Addf("capacity", "must be between 1 and %d samples", MaxBufferCapacity)
		}
		errs.AddPrefixed("policy", b.Policy.Validate())
		for key, set := range map[string]bool{
			"max_bytes": b.MaxBytes != 0, "max_samples": b.MaxSamples != 0, "max_age": b.MaxAge != 0,
			"fsync": b.Fsync != "", "group_commit": b.GroupCommit != 0, "drain_rate": b.DrainRate != 0,
			"min_free_bytes": b.MinFreeBytes != 0, "dir": b.Dir != "",
		} {
			if set {
				errs.Addf(key, "applies to type disk only")
			}
		}
	case "", BufferDisk:
		if b.Capacity != 0 {
			errs.Addf("capacity", "applies to type memory only; a disk buffer is bounded by max_bytes and max_samples")
		}
		errs.Add(b.Config.Validate())
	default:
		errs.Addf("type", "unknown buffer type %q (want disk or memory)", b.Type)
	}
	return errs.Err()
}

// Defaults used when a key is absent.
const (
	DefaultBufferCapacity = 100_000
	DefaultBatchSize      = 1000
	DefaultDrainTimeout   = 10 * time.Second
	DefaultDataDir        = "/var/lib/weir"
	MaxBufferCapacity     = 50_000_000
)

var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$`)

// Validate checks the whole configuration and returns every problem, each a
// conf.FieldError with the key path.
func (c *Config) Validate() error {
	var errs conf.Errors
	switch c.Log.Level {
	case "", "debug", "info", "warn", "error":
	default:
		errs.Addf("log.level", "unknown level %q (want debug, info, warn or error)", c.Log.Level)
	}
	switch c.Log.Format {
	case "", "text", "json":
	default:
		errs.Addf("log.format", "unknown format %q (want text or json)", c.Log.Format)
	}
	errs.AddPrefixed("http", c.HTTP.Validate())
	if c.Engine.DrainTimeout < 0 {
		errs.Addf("engine.drain_timeout", "must not be negative")
	}
	if len(c.Sources) == 0 {
		errs.Addf("sources", "at least one source is required")
	}
	if len(c.Sinks) == 0 {
		errs.Addf("sinks", "at least one sink is required")
	}
	seen := map[string]int{}
	for i, s := range c.Sources {
		at := conf.Index("sources", i)
		checkName(&errs, at, i, s.Name, seen)
		validateKind(&errs, sourceRows, &s, at, "protocol")
	}
	errs.Add(c.WriteGate.Validate())
	if c.Auth != nil {
		errs.AddPrefixed("auth", c.Auth.Validate())
		if len(c.Auth.ClientCerts) > 0 && c.HTTP.TLS.ClientCA == "" {
			errs.Addf("auth.client_certs", "needs http.tls.client_ca: without a CA no client certificate is verified, so none can be mapped to a user")
		}
	}
	errs.Add(c.Rules.Validate())
	errs.AddPrefixed("alarms", c.Alarms.Validate())
	if c.WriteCommands != nil {
		errs.AddPrefixed("write_commands", c.WriteCommands.Validate())
	}
	errs.AddPrefixed("security_events", c.SecurityEvents.Validate())
	if c.Audit != (AuditConfig{}) {
		ac := c.Audit // file has a default, the other keys are checked here
		ac.File = c.AuditFile()
		errs.AddPrefixed("audit", ac.Validate())
	}
	seen = map[string]int{}
	for i, p := range c.Processors {
		at := conf.Index("processors", i)
		checkName(&errs, at, i, p.Name, seen)
		validateKind(&errs, processorRows, &p, at, "type")
	}
	if err := c.Classification.Validate(); err != nil {
		errs.AddPrefixed("classification", err)
	} else if _, err := c.Classifier(); err != nil {
		errs.Addf("classification", "%v", err) // carried through the shared chain: too many patterns
	}
	if c.Hub != nil {
		errs.AddPrefixed("hub", c.Hub.Validate())
	}
	seen = map[string]int{}
	for i, s := range c.Sinks {
		at := conf.Index("sinks", i)
		checkName(&errs, at, i, s.Name, seen)
		if s.BatchSize < 0 {
			errs.Addf(at+".batch_size", "must not be negative")
		}
		errs.AddPrefixed(at+".buffer", s.Buffer.validate())
		validateKind(&errs, sinkRows, &s, at, "protocol")
		if _, err := route.ParseClass(s.MaxClass, route.DefaultClass); err != nil {
			errs.Addf(at+".max_class", "%v", err)
		}
		if s.Route != nil {
			s.Route.validate(&errs, at+".route")
		}
	}
	c.validateMQTTClients(&errs)
	return errs.Err()
}

func checkName(errs *conf.Errors, at string, i int, name string, seen map[string]int) {
	switch {
	case name == "":
		errs.Addf(at+".name", "is required")
	case !namePattern.MatchString(name):
		errs.Addf(at+".name", "%q is not a valid name (letters, digits, '_', '.', '-'; at most 64)", name)
	default:
		if j, dup := seen[name]; dup {
			errs.Addf(at+".name", "%q is already used by entry %d", name, j)
		}
		seen[name] = i
	}
}

// String describes the configuration in one line, for logs.
func (c *Config) String() string {
	node := strconv.Quote(c.Node.ID)
	if c.Node.ID == "" {
		node = "(host name)" // node.id defaults to the host name where it runs
	}
	return fmt.Sprintf("node=%s sources=%d sinks=%d", node, len(c.Sources), len(c.Sinks))
}
