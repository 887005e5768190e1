// Command webhook-receiver is a tiny webhook callback for the demo: it prints
// every POST it receives (headers and body) and answers 204.
//
//	go run ./examples/webhook-receiver            # listens on 127.0.0.1:8099
//	go run ./examples/webhook-receiver -listen :9000
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"sort"
	"strings"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:8099", "address to listen on")
	flag.Parse()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		names := make([]string, 0, len(r.Header))
		for name := range r.Header {
			names = append(names, name)
		}
		sort.Strings(names)
		var b strings.Builder
		fmt.Fprintf(&b, "%s %s\n", r.Method, r.URL.Path)
		for _, name := range names {
			fmt.Fprintf(&b, "  %s: %s\n", name, strings.Join(r.Header[name], ", "))
		}
		fmt.Fprintf(&b, "  body: %s\n", body)
		fmt.Print(b.String())
		w.WriteHeader(http.StatusNoContent)
	})
	log.Printf("webhook receiver listening on http://%s/", *listen)
	log.Fatal(http.ListenAndServe(*listen, nil))
}
