package playbooks

import (
	"fmt"
	"reflect"
	"testing"
)

func hostsN(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("h%02d", i+1)
	}
	return out
}

func sizes(b [][]string) []int {
	out := make([]int, len(b))
	for i, x := range b {
		out[i] = len(x)
	}
	return out
}

func TestBatches(t *testing.T) {
	tests := []struct {
		name   string
		hosts  int
		serial []SerialStep
		want   []int
	}{
		{"canary then 50%", 5, []SerialStep{{Count: 1}, {Percent: 50}}, []int{1, 2, 2}},
		{"30% of 20", 20, []SerialStep{{Percent: 30}}, []int{6, 6, 6, 2}},
		{"absent", 4, nil, []int{4}},
		{"zero", 4, []SerialStep{{Count: 0}}, []int{4}},
		{"one at a time", 3, []SerialStep{{Count: 1}}, []int{1, 1, 1}},
		{"percent rounds down, at least 1", 3, []SerialStep{{Percent: 10}}, []int{1, 1, 1}},
		{"larger than the play", 3, []SerialStep{{Count: 10}}, []int{3}},
		{"spec example", 10, []SerialStep{{Count: 1}, {Percent: 25}, {Percent: 100}}, []int{1, 2, 7}},
		{"list longer than needed", 2, []SerialStep{{Count: 1}, {Count: 1}, {Count: 5}}, []int{1, 1}},
		{"no hosts", 0, []SerialStep{{Count: 1}}, []int{}},
		{"fractional percent", 16, []SerialStep{{Percent: 12.5}}, []int{2, 2, 2, 2, 2, 2, 2, 2}},
	}
	for _, tc := range tests {
		hosts := hostsN(tc.hosts)
		b := Batches(hosts, tc.serial)
		if got := sizes(b); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: sizes = %v, want %v", tc.name, got, tc.want)
		}
		var flat []string
		for _, x := range b {
			flat = append(flat, x...)
		}
		if tc.hosts > 0 && !reflect.DeepEqual(flat, hosts) {
			t.Errorf("%s: hosts lost or reordered: %v", tc.name, flat)
		}
	}
}

func TestOrderHosts(t *testing.T) {
	hosts := []string{"b", "c", "a"}
	if got := OrderHosts(hosts, OrderSorted, OrderOptions{}); !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Errorf("sorted = %v", got)
	}
	if got := OrderHosts(hosts, OrderReverseSorted, OrderOptions{}); !reflect.DeepEqual(got, []string{"c", "b", "a"}) {
		t.Errorf("reverse = %v", got)
	}
	if got := OrderHosts(hosts, OrderInventory, OrderOptions{}); !reflect.DeepEqual(got, hosts) {
		t.Errorf("inventory = %v", got)
	}
	if !reflect.DeepEqual(hosts, []string{"b", "c", "a"}) {
		t.Error("input modified")
	}
	many := hostsN(30)
	s1 := OrderHosts(many, OrderShuffle, OrderOptions{Seed: 7})
	s2 := OrderHosts(many, OrderShuffle, OrderOptions{Seed: 7})
	s3 := OrderHosts(many, OrderShuffle, OrderOptions{Seed: 8})
	if !reflect.DeepEqual(s1, s2) || reflect.DeepEqual(s1, s3) || reflect.DeepEqual(s1, many) {
		t.Error("shuffle must be seeded and change the order")
	}
}

func TestOrderByZone(t *testing.T) {
	zone := map[string]string{
		"a1": "us-east-1a", "a2": "us-east-1a", "a3": "us-east-1a", "a4": "us-east-1a",
		"b1": "us-east-1b", "b2": "us-east-1b",
		"c1": "us-east-1c", "c2": "us-east-1c",
	}
	hosts := []string{"a1", "a2", "a3", "a4", "b1", "b2", "c1", "c2"}
	got := OrderHosts(hosts, OrderByZone, OrderOptions{Zone: func(h string) string { return zone[h] }})
	want := []string{"a1", "b1", "c1", "a2", "a3", "b2", "c2", "a4"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("by_zone = %v, want %v", got, want)
	}
	// no batch of a rolling deploy takes every host of a zone at once
	for _, serial := range [][]SerialStep{{{Count: 1}}, {{Count: 2}}, {{Count: 3}}, {{Count: 1}, {Percent: 25}}, {{Percent: 40}}} {
		for _, batch := range Batches(got, serial) {
			count := map[string]int{}
			for _, h := range batch {
				count[zone[h]]++
			}
			for z, n := range count {
				total := 0
				for _, zz := range zone {
					if zz == z {
						total++
					}
				}
				if n == total {
					t.Errorf("serial %v: batch %v empties %s", serial, batch, z)
				}
			}
		}
	}
	// an uneven fleet: the small zone is spread out, not taken in one go
	uneven := append(hostsN(10), "x1", "x2")
	zoneOf := func(h string) string {
		if h[0] == 'x' {
			return "small"
		}
		return "big"
	}
	got = OrderHosts(uneven, OrderByZone, OrderOptions{Zone: zoneOf})
	for _, batch := range Batches(got, []SerialStep{{Count: 3}}) {
		n := 0
		for _, h := range batch {
			if zoneOf(h) == "small" {
				n++
			}
		}
		if n == 2 {
			t.Errorf("batch %v empties the small zone (order %v)", batch, got)
		}
	}
	if got := OrderHosts(hosts, OrderByZone, OrderOptions{}); !reflect.DeepEqual(got, hosts) {
		t.Errorf("by_zone without zones = %v", got)
	}
}
