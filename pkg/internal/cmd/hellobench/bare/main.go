// Command bare is the floor hellobench measures hello against: the same
// answer from net/http alone, with no middleware, logging or metrics.
package main

import (
	"io"
	"log"
	"net/http"
	"os"
)

func main() {
	http.HandleFunc("GET /hello", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=UTF-8")
		_, _ = io.WriteString(w, "Hello!") // a failed write means the client left; like echo, nothing to do
	})
	// Every interface, as hello listens in a container: a socket bound to
	// 127.0.0.1 alone takes a cheaper path through the kernel than the
	// dual-stack one hello gets, and the comparison would count that too.
	log.Fatal(http.ListenAndServe(":"+os.Getenv("PORT"), nil))
}
