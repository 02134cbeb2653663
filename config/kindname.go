package config

// SourceKind names the protocol block of s ("modbus", "opcua", "mqtt");
// "" when it has none. For the data-flow map and reports.
func SourceKind(s *Source) string { return kindOf(sourceRows, s) }

// SinkKind names the protocol block of s ("mqtt", "kafka", "historian",
// …); "" when it has none.
func SinkKind(s *Sink) string { return kindOf(sinkRows, s) }

// ProcessorKind names the type block of p ("deadband", "window", …); ""
// when it has none.
func ProcessorKind(p *Processor) string { return kindOf(processorRows, p) }
