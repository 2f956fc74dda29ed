package parallel

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestEachBoundsAndCoversAll(t *testing.T) {
	var running, peak, calls atomic.Int32
	var mu sync.Mutex
	seen := map[int]bool{}
	gate := make(chan struct{})
	go func() {
		// release calls one at a time so that the bound is reached
		for i := 0; i < 50; i++ {
			gate <- struct{}{}
		}
	}()
	Each(context.Background(), 50, 4, func(i int) {
		r := running.Add(1)
		for {
			p := peak.Load()
			if r <= p || peak.CompareAndSwap(p, r) {
				break
			}
		}
		<-gate
		mu.Lock()
		seen[i] = true
		mu.Unlock()
		calls.Add(1)
		running.Add(-1)
	})
	if calls.Load() != 50 || len(seen) != 50 {
		t.Fatalf("calls %d, distinct %d", calls.Load(), len(seen))
	}
	if peak.Load() > 4 {
		t.Fatalf("%d ran at once, limit 4", peak.Load())
	}
}

func TestEachSkipsAfterCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	Each(ctx, 100, 1, func(i int) {
		if calls.Add(1) == 3 {
			cancel()
		}
	})
	if n := calls.Load(); n != 3 {
		t.Fatalf("%d calls after cancelling at the third", n)
	}
	var all atomic.Int32
	Each(context.WithoutCancel(ctx), 10, 2, func(int) { all.Add(1) })
	if all.Load() != 10 {
		t.Fatalf("WithoutCancel: %d calls", all.Load())
	}
}

func TestFirstErrorStopsStarting(t *testing.T) {
	var calls atomic.Int32
	boom := errors.New("boom")
	err := FirstError(context.Background(), 100, 1, func(i int) error {
		calls.Add(1)
		if i == 4 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) || calls.Load() != 5 {
		t.Fatalf("err %v after %d calls, want boom after 5", err, calls.Load())
	}
	if err := FirstError(context.Background(), 10, 3, func(int) error { return nil }); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := FirstError(ctx, 10, 3, func(int) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}
