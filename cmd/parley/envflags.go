package main

import (
	"flag"
	"fmt"
	"strconv"
	"time"
)

// envFlags defines flags whose defaults come from PARLEY_* environment
// variables (flags win). A variable that does not parse is recorded in errs,
// so the start fails naming it.
type envFlags struct {
	fs     *flag.FlagSet
	getenv func(string) string
	errs   *[]error
}

func (f envFlags) str(p *string, flagName, env, def, usage string) {
	v := def
	if e := f.getenv(env); e != "" {
		v = e
	}
	f.fs.StringVar(p, flagName, v, usage+" ("+env+")")
}

func (f envFlags) dur(p *time.Duration, flagName, env string, def time.Duration, usage string) {
	v := def
	if e := f.getenv(env); e != "" {
		d, err := time.ParseDuration(e)
		if err != nil {
			*f.errs = append(*f.errs, fmt.Errorf("%s: %q is not a duration like 15m or 30s", env, e))
		}
		v = d
	}
	f.fs.DurationVar(p, flagName, v, usage+" ("+env+")")
}

func (f envFlags) int(p *int, flagName, env string, def int, usage string) {
	v := def
	if e := f.getenv(env); e != "" {
		n, err := strconv.Atoi(e)
		if err != nil {
			*f.errs = append(*f.errs, fmt.Errorf("%s: %q is not a whole number", env, e))
		}
		v = n
	}
	f.fs.IntVar(p, flagName, v, usage+" ("+env+")")
}

func (f envFlags) float(p *float64, flagName, env string, def float64, usage string) {
	v := def
	if e := f.getenv(env); e != "" {
		r, err := strconv.ParseFloat(e, 64)
		if err != nil {
			*f.errs = append(*f.errs, fmt.Errorf("%s: %q is not a number", env, e))
		}
		v = r
	}
	f.fs.Float64Var(p, flagName, v, usage+" ("+env+")")
}
