// Command ws-client is the smallest useful WebSocket client for a Sluice API:
// it prints every message the gateway sends, one per line, and publishes
// every line typed on stdin as one message.
//
//	go run ./examples/ws-client ws://127.0.0.1:8082/demo
//	go run ./examples/ws-client -H 'X-Gravitee-Client-Identifier: ws-reader' ws://127.0.0.1:8082/demo
//
// It exits when stdin ends (Ctrl-D) or the gateway closes the connection,
// printing the close code and reason the gateway gave.
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// headers collects repeated -H 'Name: value' flags.
type headers http.Header

func (h headers) String() string { return "" }

func (h headers) Set(s string) error {
	name, value, ok := strings.Cut(s, ":")
	if !ok {
		return fmt.Errorf("header %q: want 'Name: value'", s)
	}
	http.Header(h).Add(strings.TrimSpace(name), strings.TrimSpace(value))
	return nil
}

func main() {
	h := headers{}
	flag.Var(h, "H", "request header 'Name: value' (repeatable), e.g. X-Gravitee-Client-Identifier or X-Gravitee-Api-Key")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: ws-client [-H 'Name: value']... ws://HOST:PORT/CONTEXT_PATH")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() != 1 {
		flag.Usage()
		os.Exit(2)
	}
	conn, resp, err := websocket.DefaultDialer.Dial(flag.Arg(0), http.Header(h))
	if err != nil {
		if resp != nil {
			// The gateway refused the upgrade with an HTTP answer (401 without
			// a key, 404 for an unknown path): its status says why.
			fmt.Fprintf(os.Stderr, "ws-client: %s: %s\n", flag.Arg(0), resp.Status)
		} else {
			fmt.Fprintf(os.Stderr, "ws-client: %v\n", err)
		}
		os.Exit(1)
	}
	fmt.Fprintf(os.Stderr, "connected to %s; type a line to publish it, Ctrl-D to quit\n", flag.Arg(0))

	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			// Records arrive as binary frames, published messages may be
			// text or binary: both are printed as they are.
			_, msg, err := conn.ReadMessage()
			if err != nil {
				var ce *websocket.CloseError
				if errors.As(err, &ce) {
					if ce.Code != websocket.CloseNormalClosure {
						fmt.Fprintf(os.Stderr, "closed by the gateway: %d %s\n", ce.Code, ce.Text)
					}
				} else {
					fmt.Fprintf(os.Stderr, "ws-client: %v\n", err)
				}
				return
			}
			fmt.Println(string(msg))
		}
	}()

	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		if err := conn.WriteMessage(websocket.TextMessage, in.Bytes()); err != nil {
			fmt.Fprintf(os.Stderr, "ws-client: %v\n", err)
			break
		}
	}
	// A clean close: say goodbye, and let the gateway answer before the
	// connection goes.
	_ = conn.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""))
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	conn.Close()
}
