//go:build !goexperiment.jsonv2

package jsonlog

// invalidUTF8 is what slog.JSONHandler writes for each byte of invalid
// UTF-8: the escaped replacement character when encoding/json is v1.
const invalidUTF8 = `\ufffd`
