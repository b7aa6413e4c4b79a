package server

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/labstack/echo/v4"
)

// deadlineMiddleware gives each request's context a deadline, so anything a
// handler waits on gives up in time; a handler that returns
// context.DeadlineExceeded gets a 503.
//
// It does what echo's ContextTimeout does, without its cost: almost every
// request finishes without anything waiting on its context, yet
// context.WithTimeout arms a timer for each one (four allocations, about
// half of what a /hello request costs). deadlineContext arms it only when
// something waits on Done.
func deadlineMiddleware(timeout time.Duration) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			req := c.Request()
			ctx := &deadlineContext{parent: req.Context(), deadline: time.Now().Add(timeout)}
			defer ctx.release()
			c.SetRequest(req.WithContext(ctx))
			err := next(c)
			if err != nil && errors.Is(err, context.DeadlineExceeded) {
				return echo.ErrServiceUnavailable.WithInternal(err)
			}
			return err
		}
	}
}

// deadlineContext behaves as context.WithDeadline(parent, deadline) whose
// cancel function is release, but creates that context (and its timer) only
// once Done is called, or once it is asked about after the deadline or the
// release.
type deadlineContext struct {
	parent   context.Context
	deadline time.Time

	mu       sync.Mutex
	armed    context.Context // nil until needed
	cancel   context.CancelFunc
	released bool
}

func (c *deadlineContext) arm() context.Context {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.armed == nil {
		c.armed, c.cancel = context.WithDeadline(c.parent, c.deadline)
		if c.released {
			c.cancel()
		}
	}
	return c.armed
}

// release is the cancel function: it ends the context when the request is
// done, as `defer cancel()` would.
func (c *deadlineContext) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.released = true
	if c.cancel != nil {
		c.cancel()
	}
}

// settled reports the armed context if there is one, and otherwise whether
// the context is already over (so only an armed one can answer right).
func (c *deadlineContext) settled() (context.Context, bool) {
	c.mu.Lock()
	armed, released := c.armed, c.released
	c.mu.Unlock()
	if armed != nil {
		return armed, true
	}
	return nil, released || c.parent.Err() != nil || !time.Now().Before(c.deadline)
}

func (c *deadlineContext) Deadline() (time.Time, bool) {
	if d, ok := c.parent.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *deadlineContext) Done() <-chan struct{} { return c.arm().Done() }

func (c *deadlineContext) Err() error {
	if armed, over := c.settled(); armed != nil {
		return armed.Err()
	} else if over {
		return c.arm().Err()
	}
	return nil
}

// Value answers from the armed context once there is one or must be one:
// context.Cause finds the cause through Value.
func (c *deadlineContext) Value(key any) any {
	if armed, over := c.settled(); armed != nil {
		return armed.Value(key)
	} else if over {
		return c.arm().Value(key)
	}
	return c.parent.Value(key)
}
