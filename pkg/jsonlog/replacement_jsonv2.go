//go:build goexperiment.jsonv2

package jsonlog

// invalidUTF8 is what slog.JSONHandler writes for each byte of invalid
// UTF-8: the replacement character itself when encoding/json is v2
// (go.dev/cl/687116; on by default since Go 1.27).
const invalidUTF8 = "\ufffd"
