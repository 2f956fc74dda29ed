package cli

import (
	"fmt"
	"strconv"
	"time"
)

// Duration is a flag accepting Go durations ("90s", "2m") or plain seconds ("30").
type Duration time.Duration

// UnmarshalText implements encoding.TextUnmarshaler for kong.
func (d *Duration) UnmarshalText(b []byte) error {
	s := string(b)
	if n, err := strconv.Atoi(s); err == nil {
		*d = Duration(time.Duration(n) * time.Second)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("bad duration %q: use e.g. 30s, 2m or a number of seconds", s)
	}
	*d = Duration(v)
	return nil
}

func timeDuration(d Duration) time.Duration { return time.Duration(d) }
