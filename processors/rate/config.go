package rate

import (
	"math"
	"time"

	"github.com/weir-edge/weir/internal/conf"
	"github.com/weir-edge/weir/model"
	"github.com/weir-edge/weir/processors/match"
)

// Defaults applied by setDefaults.
const (
	DefaultMaxTags = 100_000
	maxSamples     = 10_000
)

// Functions.
const (
	FuncRate          = "rate"
	FuncMovingAverage = "moving_average"
	FuncEWMA          = "ewma"
)

// Config is the `rate:` block of a processor.
type Config struct {
	Match []string `yaml:"match"`
	// Function: rate (change per Per, by SourceTime), moving_average (mean
	// of the last Samples values) or ewma (exponential smoothing by Alpha).
	Function string `yaml:"function"`
	// Per is the rate's time unit; default 1s (per second).
	Per time.Duration `yaml:"per"`
	// Rollover is the maximum of an unsigned counter (65535, 4294967295):
	// a decrease is taken as a wrap past it. 0: decreases are negative rates.
	Rollover uint64 `yaml:"rollover"`
	// Samples is N of the moving average.
	Samples int `yaml:"samples"`
	// Alpha is the EWMA weight of the newest value, in (0, 1].
	Alpha float64 `yaml:"alpha"`
	// Replace puts the result in place of the input value; otherwise the
	// input passes unchanged and the result goes to path + Output.PathSuffix.
	Replace bool   `yaml:"replace"`
	Output  Output `yaml:"output"`
	// MaxTags bounds the per-tag state; further tags pass untouched.
	MaxTags int `yaml:"max_tags"`
}

// Output names the derived tag: the input's path + PathSuffix ("_rate" →
// ".../flow_rate", "/rate" → ".../flow/rate").
type Output struct {
	PathSuffix string `yaml:"path_suffix"`
}

func (c *Config) setDefaults() {
	if c.Per == 0 {
		c.Per = time.Second
	}
	if c.MaxTags == 0 {
		c.MaxTags = DefaultMaxTags
	}
}

// Validate checks the configuration as written; it does no I/O.
func (c *Config) Validate() error {
	var errs conf.Errors
	errs.Add(match.Validate("match", c.Match))
	switch c.Function {
	case FuncRate, FuncMovingAverage, FuncEWMA:
	case "":
		errs.Addf("function", "is required: rate, moving_average or ewma")
	default:
		errs.Addf("function", "%q is not one of rate, moving_average, ewma", c.Function)
	}
	if c.Per < 0 {
		errs.Addf("per", "must not be negative")
	} else if c.Per > 0 && c.Function != FuncRate {
		errs.Addf("per", "only used with function: rate")
	}
	if c.Rollover > 0 && c.Function != FuncRate {
		errs.Addf("rollover", "only used with function: rate")
	}
	if c.Function == FuncMovingAverage {
		if c.Samples < 1 || c.Samples > maxSamples {
			errs.Addf("samples", "must be between 1 and %d", maxSamples)
		}
	} else if c.Samples != 0 {
		errs.Addf("samples", "only used with function: moving_average")
	}
	if c.Function == FuncEWMA {
		if !(c.Alpha > 0 && c.Alpha <= 1) {
			errs.Addf("alpha", "must be in (0, 1]")
		}
	} else if c.Alpha != 0 {
		errs.Addf("alpha", "only used with function: ewma")
	}
	switch {
	case c.Replace && c.Output.PathSuffix != "":
		errs.Addf("replace", "set replace or output.path_suffix, not both")
	case !c.Replace && c.Output.PathSuffix == "":
		errs.Addf("output.path_suffix", "set output.path_suffix (a derived tag) or replace: true")
	case c.Output.PathSuffix != "":
		if err := model.ValidatePath("x" + c.Output.PathSuffix); err != nil {
			errs.Add(conf.Errorf("output.path_suffix", "%q does not make valid paths: %w", c.Output.PathSuffix, err))
		}
	}
	if c.MaxTags < 0 {
		errs.Addf("max_tags", "must not be negative")
	}
	if math.IsNaN(c.Alpha) {
		errs.Addf("alpha", "must be a number")
	}
	return errs.Err()
}
