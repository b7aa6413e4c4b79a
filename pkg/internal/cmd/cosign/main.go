// Command cosign runs the cosign release the project pins (airgap.CosignModule), building it into the user cache
// dir the first time:
//
//	go run ./pkg/internal/cmd/cosign version
//	go run ./pkg/internal/cmd/cosign verify --key cosign.pub IMAGE
//
// .ci/run uses it to build cosign before the tests, so the signing test spends its time signing.
package main

import (
	"github.com/kobuilt/hello/pkg/internal/airgap"
	"github.com/kobuilt/hello/pkg/internal/buildcache"
)

func main() { buildcache.Exec("cosign", airgap.Cosign) }
