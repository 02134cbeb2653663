package cli

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/weir-edge/weir/internal/logcapture"
	"github.com/weir-edge/weir/sim"
	simopcua "github.com/weir-edge/weir/sim/opcua"
)

// defineSim serves the simulated plant; FILE (or the old -c FILE) is a
// simulator configuration.
func defineSim(fs *flag.FlagSet) body {
	path := fs.String("c", "", "simulator configuration file (old form of the FILE argument; YAML, see -sample)")
	listen := fs.String("listen", "", "plant address host:port (default "+sim.DefaultListen+"; port 0 picks a free one)")
	seed := fs.Int64("seed", 0, "random seed (same seed, same plant)")
	noFaults := fs.Bool("no-faults", false, "disable random faults")
	benchDevices := fs.Int("bench-devices", 0, "also serve N generic load-test devices, each on its own port")
	benchTags := fs.Int("bench-tags", 0, "holding registers per load-test device (default 100)")
	opcuaListen := fs.String("opcua-listen", "", "also serve the same plant over OPC UA on host:port (e.g. 127.0.0.1:4840; port 0 picks one)")
	opcuaUser := fs.String("opcua-user", "", "with -opcua-listen: a user name for UserName logins; its password is read from $WEIR_SIM_OPCUA_PASSWORD")
	sample := fs.Bool("sample", false, "print a sample configuration and exit")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	return func(ctx context.Context, pos []string, stdout, stderr io.Writer) error {
		switch {
		case len(pos) > 1 || len(pos) == 1 && *path != "" && *path != pos[0]:
			fmt.Fprintln(stderr, "weir sim: one configuration FILE at most")
			return errUsage
		case len(pos) == 1:
			*path = pos[0]
		}
		return serveSim(ctx, fs, simFlags{path: *path, listen: *listen, seed: *seed, noFaults: *noFaults, benchDevices: *benchDevices,
			benchTags: *benchTags, opcuaListen: *opcuaListen, opcuaUser: *opcuaUser, sample: *sample, logLevel: *logLevel}, stdout, stderr)
	}
}

type simFlags struct {
	path, listen            string
	seed                    int64
	noFaults                bool
	benchDevices, benchTags int
	opcuaListen, opcuaUser  string
	sample                  bool
	logLevel                string
}

func serveSim(ctx context.Context, fs *flag.FlagSet, f simFlags, stdout, stderr io.Writer) error {
	path, listen, seed, noFaults, benchDevices, benchTags := &f.path, &f.listen, &f.seed, &f.noFaults, &f.benchDevices, &f.benchTags
	opcuaListen, opcuaUser, sample, logLevel := &f.opcuaListen, &f.opcuaUser, &f.sample, &f.logLevel
	if *sample {
		fmt.Fprint(stdout, sim.SampleConfig)
		return nil
	}
	var cfg sim.Config
	if *path != "" {
		data, err := os.ReadFile(*path)
		if err != nil {
			return err
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && err != io.EOF {
			return fmt.Errorf("%s: %w", *path, err)
		}
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			cfg.Listen = *listen
		case "seed":
			cfg.Seed = *seed
		case "no-faults":
			cfg.NoFaults = *noFaults
		case "bench-devices":
			cfg.Bench.Devices = *benchDevices
		case "bench-tags":
			cfg.Bench.Tags = *benchTags
		}
	})
	log, err := newLogger(stderr, *logLevel, "text")
	if err != nil {
		return err
	}
	defer logcapture.Install(log)() // gopcua's log-package output as slog records
	s, err := sim.New(cfg, log.With("component", "sim"))
	if err != nil {
		return err
	}
	if err := s.Start(ctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "Simulated filling line (Modbus TCP) on %s\n", s.Addr())
	if *opcuaListen != "" {
		opts := simopcua.Options{}
		if *opcuaUser != "" {
			pw := os.Getenv("WEIR_SIM_OPCUA_PASSWORD")
			if pw == "" {
				s.Close()
				return fmt.Errorf("-opcua-user needs the password in $WEIR_SIM_OPCUA_PASSWORD")
			}
			opts.Users = map[string]string{*opcuaUser: pw}
		}
		ua, err := simopcua.Serve(ctx, *opcuaListen, s.Plant, opts, log.With("component", "sim-opcua"))
		if err != nil {
			s.Close()
			return fmt.Errorf("opc ua: %w", err)
		}
		defer ua.Close()
		fmt.Fprintf(stdout, "Same plant over OPC UA on %s (security None and Basic256Sha256; browse with: weir browse %s -security None)\n",
			ua.Endpoint(), ua.Endpoint())
	}
	if addrs := s.BenchAddrs(); len(addrs) > 0 {
		fmt.Fprintf(stdout, "Load-test devices: %s\n", strings.Join(addrs, " "))
	}
	fmt.Fprintln(stdout, "Register map: weir run --print-config, or sim/README.md. Ctrl-C stops.")
	<-ctx.Done()
	return s.Close()
}
