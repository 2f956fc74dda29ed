package template

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/jmespath/go-jmespath"
)

// jsonQuery is Ansible's json_query filter (community.general): a JMESPath
// expression over the value, which goes through JSON first, as Ansible's
// does, so numbers compare as numbers whatever their Go type.
func jsonQuery(a []any, _ kwargs) (any, error) {
	q := Text(arg(a, 1))
	b, err := json.Marshal(arg(a, 0))
	if err != nil {
		return nil, fmt.Errorf("json_query: %w", err)
	}
	var data any
	if err := json.Unmarshal(b, &data); err != nil {
		return nil, fmt.Errorf("json_query: %w", err)
	}
	out, err := jmespath.Search(q, data)
	if err != nil {
		return nil, fmt.Errorf("json_query: %q: %w", q, err)
	}
	return wholeNumbers(out), nil
}

// wholeNumbers turns the float64s JSON gives back into ints where they are
// whole, as Python's json does for 8080.
func wholeNumbers(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return int(x)
		}
	case []any:
		for i := range x {
			x[i] = wholeNumbers(x[i])
		}
	case map[string]any:
		for k := range x {
			x[k] = wholeNumbers(x[k])
		}
	}
	return v
}
