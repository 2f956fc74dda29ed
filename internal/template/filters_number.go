// Jinja's number filters: int, float, abs, round, min/max, sum.

package template

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

func toNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case int32:
		return float64(x), true
	case uint64:
		return float64(x), true
	case float64:
		return x, true
	case float32:
		return float64(x), true
	}
	return 0, false
}

func numResult(f float64) any {
	if f == math.Trunc(f) && math.Abs(f) < 1<<53 {
		return int(f)
	}
	return f
}

func fInt(a []any, kw kwargs) (any, error) {
	def := opt(a, kw, 1, "default", 0)
	switch x := arg(a, 0).(type) {
	case bool:
		if x {
			return 1, nil
		}
		return 0, nil
	case string:
		s := strings.TrimSpace(x)
		base := 10
		if b, ok := toNumber(opt(a, kw, 2, "base", 10)); ok {
			base = int(b)
		}
		if i, err := strconv.ParseInt(s, base, 64); err == nil {
			return int(i), nil
		}
		if f, err := strconv.ParseFloat(s, 64); err == nil {
			return int(f), nil
		}
		return def, nil
	}
	if n, ok := toNumber(arg(a, 0)); ok {
		return int(n), nil
	}
	return def, nil
}

func fFloat(a []any, kw kwargs) (any, error) {
	if s, ok := arg(a, 0).(string); ok {
		if f, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err == nil {
			return f, nil
		}
		return opt(a, kw, 1, "default", 0.0), nil
	}
	if n, ok := toNumber(arg(a, 0)); ok {
		return n, nil
	}
	return opt(a, kw, 1, "default", 0.0), nil
}

func fAbs(a []any, _ kwargs) (any, error) {
	n, ok := toNumber(arg(a, 0))
	if !ok {
		return nil, errors.New("abs: want a number")
	}
	return numResult(math.Abs(n)), nil
}

func fRound(a []any, kw kwargs) (any, error) {
	n, ok := toNumber(arg(a, 0))
	if !ok {
		return nil, errors.New("round: want a number")
	}
	prec, _ := toNumber(opt(a, kw, 1, "precision", 0))
	p := math.Pow(10, prec)
	switch Text(opt(a, kw, 2, "method", "common")) {
	case "floor":
		return math.Floor(n*p) / p, nil
	case "ceil":
		return math.Ceil(n*p) / p, nil
	}
	return math.Round(n*p) / p, nil
}

func fMinMax(sign int) jfunc {
	return func(a []any, kw kwargs) (any, error) {
		l, err := toList(arg(a, 0))
		if err != nil || len(l) == 0 {
			return nil, errors.New("min/max: want a non-empty list")
		}
		by := Text(kw["attribute"])
		key := func(x any) any {
			if by != "" {
				return attr(x, by)
			}
			return x
		}
		best := l[0]
		for _, x := range l[1:] {
			if sign < 0 && less(key(x), key(best)) || sign > 0 && less(key(best), key(x)) {
				best = x
			}
		}
		return best, nil
	}
}

func fSum(a []any, kw kwargs) (any, error) {
	l, err := toList(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("sum: %w", err)
	}
	total, _ := toNumber(opt(a, kw, 2, "start", 0))
	by := Text(opt(a, kw, 1, "attribute", ""))
	for _, x := range l {
		if by != "" {
			x = attr(x, by)
		}
		n, ok := toNumber(x)
		if !ok {
			return nil, fmt.Errorf("sum: %s is not a number", Describe(x))
		}
		total += n
	}
	return numResult(total), nil
}
