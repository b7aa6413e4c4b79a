package server

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

type ctxKey struct{}

func TestDeadlineContextActsLikeWithDeadline(t *testing.T) {
	parentWith := func() (context.Context, context.CancelFunc) {
		return context.WithCancel(context.WithValue(context.Background(), ctxKey{}, "v"))
	}
	tests := []struct {
		name    string
		timeout time.Duration
		act     func(c *deadlineContext, cancelParent context.CancelFunc)
		wantErr error
		// wantCause is what context.Cause must report.
		wantCause error
	}{
		{"alive", time.Hour, func(*deadlineContext, context.CancelFunc) {}, nil, nil},
		{"deadline passed, nobody waited", 10 * time.Millisecond,
			func(*deadlineContext, context.CancelFunc) { time.Sleep(20 * time.Millisecond) },
			context.DeadlineExceeded, context.DeadlineExceeded},
		{"deadline passed while waiting", 10 * time.Millisecond,
			func(c *deadlineContext, _ context.CancelFunc) { <-c.Done() },
			context.DeadlineExceeded, context.DeadlineExceeded},
		{"parent cancelled, nobody waited", time.Hour,
			func(_ *deadlineContext, cancel context.CancelFunc) { cancel() },
			context.Canceled, context.Canceled},
		{"parent cancelled while waiting", time.Hour,
			func(c *deadlineContext, cancel context.CancelFunc) { go cancel(); <-c.Done() },
			context.Canceled, context.Canceled},
		{"released, nobody waited", time.Hour,
			func(c *deadlineContext, _ context.CancelFunc) { c.release() },
			context.Canceled, context.Canceled},
		{"released while waiting", time.Hour,
			func(c *deadlineContext, _ context.CancelFunc) { go c.release(); <-c.Done() },
			context.Canceled, context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, cancel := parentWith()
			defer cancel()
			c := &deadlineContext{parent: parent, deadline: time.Now().Add(tt.timeout)}
			tt.act(c, cancel)
			if err := c.Err(); !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Errorf("Err() = %v, want %v", err, tt.wantErr)
			}
			if cause := context.Cause(c); !errors.Is(cause, tt.wantCause) {
				t.Errorf("Cause() = %v, want %v", cause, tt.wantCause)
			}
			if v := c.Value(ctxKey{}); v != "v" {
				t.Errorf("Value = %v: parent values must show through", v)
			}
			select {
			case <-c.Done():
				if tt.wantErr == nil {
					t.Error("Done closed on a live context")
				}
			default:
				if tt.wantErr != nil {
					t.Error("Done not closed on a finished context")
				}
			}
			if d, ok := c.Deadline(); !ok || !d.Equal(c.deadline) {
				t.Errorf("Deadline() = %v, %v", d, ok)
			}
		})
	}
}

func TestDeadlineContextChildren(t *testing.T) {
	c := &deadlineContext{parent: context.Background(), deadline: time.Now().Add(20 * time.Millisecond)}
	child, cancel := context.WithCancel(c)
	defer cancel()
	select {
	case <-child.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a child context did not end at the parent's deadline")
	}
	if !errors.Is(child.Err(), context.DeadlineExceeded) {
		t.Errorf("child Err() = %v", child.Err())
	}

	early, cancelEarly := context.WithDeadline(context.Background(), time.Now().Add(time.Minute))
	defer cancelEarly()
	c = &deadlineContext{parent: early, deadline: time.Now().Add(time.Hour)}
	if d, _ := c.Deadline(); !d.Before(time.Now().Add(2 * time.Minute)) {
		t.Errorf("Deadline() = %v: the parent's earlier deadline must win", d)
	}
}

// Run with -race: every method may be called from many goroutines.
func TestDeadlineContextConcurrentUse(t *testing.T) {
	c := &deadlineContext{parent: context.Background(), deadline: time.Now().Add(5 * time.Millisecond)}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			switch i % 4 {
			case 0:
				<-c.Done()
			case 1:
				for c.Err() == nil {
					time.Sleep(time.Millisecond)
				}
			case 2:
				_ = c.Value(ctxKey{})
			case 3:
				time.Sleep(2 * time.Millisecond)
				c.release()
			}
		})
	}
	wg.Wait()
	if c.Err() == nil {
		t.Error("context still alive")
	}
}
