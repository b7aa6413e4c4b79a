//go:build !linux

package node

import (
	"errors"
)

type hostState struct{}

func snapshotHost() (*hostState, error) {
	return nil, errors.New("node: a Kubernetes node needs Linux")
}

func (*hostState) restore(string) error { return nil }
