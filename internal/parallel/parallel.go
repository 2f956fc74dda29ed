// Package parallel runs one piece of work per item with a bound on how many
// run at once: hosts of a batch, preflight connections, AWS calls, lab hosts.
package parallel

import (
	"context"
	"sync"
)

// Each calls fn(i) for every i in [0, n), at most limit at once (all at
// once when limit <= 0), and returns when every call has returned. Once
// ctx ends, the calls not yet started are skipped; pass
// context.WithoutCancel(ctx) to start every one regardless.
func Each(ctx context.Context, n, limit int, fn func(i int)) {
	if limit <= 0 || limit > n {
		limit = n
	}
	sem := make(chan struct{}, limit)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			fn(i)
		}()
	}
	wg.Wait()
}

// FirstError is Each for work that stops at the first failure: once a call
// fails, no further call starts. It returns the first error, else ctx's.
func FirstError(ctx context.Context, n, limit int, fn func(i int) error) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	Each(ctx, n, limit, func(i int) {
		if err := fn(i); err != nil {
			cancel(err)
		}
	})
	return context.Cause(ctx)
}

// Await runs f in its own goroutine and returns its error, or ctx's as
// soon as ctx ends; f is then left to finish on its own. For calls that
// cannot take a context (a request waiting for a server's reply, a loader
// reading a file) where the caller must not wait past a signal.
func Await(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}
