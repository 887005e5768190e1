package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"time"
)

// topic is what every entrypoint of the soak API reads and writes.
const topic = "soak"

// dlqTopic takes the dead letters of the push subscription that has a dlq.
const dlqTopic = "soak-dlq"

// The push subscriptions' ids, which are also their consumer groups.
const (
	hookID    = "soak-hook"
	hookDLQID = "soak-hook-dlq"
)

// configTemplate is the soak's gateway.hcl: %s are listen, admin, plugin
// dir, the broker's address (the readers' API), the webhook receiver's base
// URL (twice) and the broker's address (twice, the push API's endpoints).
//
// The push API reads the same topic from the beginning (earliest: every
// record produced is to be delivered) with two subscriptions: soak-hook
// retries (the receiver answers 503 now and then) and has no dlq, so a
// message that exhausts its attempts interrupts it; soak-hook-dlq retries
// less and dead-letters what still fails (the receiver refuses a few
// records every time) to soak-dlq.
const configTemplate = `
gateway {
  listen       = %q
  admin_listen = %q
  plugin_dir   = %q
}

api "soak" {
  context_path = "/soak"
  plan "keyless" {}

  entrypoint "http-post" { request_headers_to_message = true }
  entrypoint "http-get" {
    qos                        = "at-least-once"
    messages_limit_count       = 200
    messages_limit_duration_ms = 500
  }
  entrypoint "sse" {
    qos                      = "at-least-once"
    heartbeat_interval_in_ms = 2000
  }
  entrypoint "websocket" {
    publisher { enabled = true }
    subscriber { enabled = true }
  }

  endpoint "kafka" "default" {
    bootstrap_servers = %q
    producer {
      enabled = true
      topics  = ["soak"]
    }
    consumer {
      enabled           = true
      topics            = ["soak"]
      auto_offset_reset = "latest"
    }
  }

  flow "keys" {
    publish {
      policy "assign-attributes" {
        attribute {
          name  = "gravitee.attribute.kafka.recordKey"
          value = "{#request.headers['X-Key'][0]}"
        }
      }
    }
  }
}

api "soak-push" {
  context_path = "/soak-push"
  plan "push" {
    subscription "soak-hook" {
      callback_url = "%s/hook"
      retry {
        retry_option          = "Retry On Fail"
        retry_strategy        = "LINEAR"
        max_attempts          = 5
        initial_delay_seconds = 0
      }
    }
    subscription "soak-hook-dlq" {
      callback_url = "%s/hook-dlq"
      retry {
        retry_option          = "Retry On Fail"
        retry_strategy        = "EXPONENTIAL"
        max_attempts          = 3
        initial_delay_seconds = 0
      }
      dlq { endpoint = "dead" }
    }
  }
  entrypoint "webhook" { qos = "at-least-once" }
  endpoint "kafka" "default" {
    bootstrap_servers = %q
    consumer {
      enabled           = true
      topics            = ["soak"]
      auto_offset_reset = "earliest"
    }
  }
  endpoint "kafka" "dead" {
    bootstrap_servers = %q
    producer {
      enabled = true
      topics  = ["soak-dlq"]
    }
  }
}
`

// brokerTemplate is the broker's own configuration: a sluice with only the
// embedded broker, in a process of its own, so the gateway's figures do not
// include the broker, which keeps every record in memory and so grows with
// the data by design. %s are listen, admin, broker address, data dir.
const brokerTemplate = `
gateway {
  listen       = %q
  admin_listen = %q
  plugin_dir   = "empty"
}

dev_kafka {
  listen   = %q
  data_dir = %q
  topics   = { "soak" = 3, "soak-dlq" = 1 }
}
`

// gateway is the sluice process under soak, and its broker.
type gateway struct {
	broker     *exec.Cmd
	brokerDone chan struct{}
	cmd        *exec.Cmd
	listen     string
	admin      string
	kafka      string
	logPath    string
	exited     atomic.Bool
	done       chan struct{}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// startGateway writes the configuration into dir, starts sluice and waits
// for /ready and for the push subscriptions to run. hookURL is the base URL
// of the webhook receiver.
func startGateway(ctx context.Context, binDir, dir, hookURL string) (*gateway, error) {
	bin, err := filepath.Abs(binDir)
	if err != nil {
		return nil, err
	}
	g := &gateway{done: make(chan struct{})}
	for _, a := range []*string{&g.listen, &g.admin, &g.kafka} {
		if *a, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	if err := g.startBroker(bin, dir); err != nil {
		return nil, err
	}
	cfg := fmt.Sprintf(configTemplate, g.listen, g.admin, filepath.Join(bin, "plugins"), g.kafka,
		hookURL, hookURL, g.kafka, g.kafka)
	path := filepath.Join(dir, "gateway.hcl")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, err
	}
	g.logPath = filepath.Join(dir, "gateway.log")
	logf, err := os.Create(g.logPath)
	if err != nil {
		return nil, err
	}
	g.cmd = exec.Command(filepath.Join(bin, "sluice"), "run", path)
	g.cmd.Stdout, g.cmd.Stderr = logf, logf
	// The gateway dies with the soak, whatever ends it.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		g.stopBroker()
		return nil, err
	}
	go func() {
		_ = g.cmd.Wait()
		logf.Close()
		g.exited.Store(true)
		close(g.done)
	}()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if g.exited.Load() {
			return nil, fmt.Errorf("gateway exited before ready:\n%s", tail(g.logPath))
		}
		if resp, err := http.Get("http://" + g.admin + "/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 && g.pushRunning() {
				return g, nil
			}
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			g.stop()
			return nil, fmt.Errorf("gateway not ready:\n%s", tail(g.logPath))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// stop sends SIGTERM and waits, then SIGKILL; the broker goes last.
func (g *gateway) stop() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(20 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.done
	}
	g.stopBroker()
}

// startBroker runs the broker process and waits until it accepts
// connections.
func (g *gateway) startBroker(bin, dir string) error {
	listen, err := freeAddr()
	if err != nil {
		return err
	}
	admin, err := freeAddr()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "empty"), 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "broker.hcl")
	if err := os.WriteFile(path, []byte(fmt.Sprintf(brokerTemplate, listen, admin, g.kafka, filepath.Join(dir, "kafka"))), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "broker.log"))
	if err != nil {
		return err
	}
	g.broker = exec.Command(filepath.Join(bin, "sluice"), "run", path)
	g.broker.Stdout, g.broker.Stderr = logf, logf
	g.broker.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := g.broker.Start(); err != nil {
		logf.Close()
		return err
	}
	g.brokerDone = make(chan struct{})
	go func() { _ = g.broker.Wait(); logf.Close(); close(g.brokerDone) }()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c, err := net.DialTimeout("tcp", g.kafka, time.Second); err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			g.stopBroker()
			return fmt.Errorf("broker not up:\n%s", tail(filepath.Join(dir, "broker.log")))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *gateway) stopBroker() {
	if g.broker == nil || g.broker.Process == nil {
		return
	}
	_ = g.broker.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.brokerDone:
	case <-time.After(20 * time.Second):
		_ = g.broker.Process.Kill()
		<-g.brokerDone
	}
}

// tail returns the end of a log file.
func tail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.Size() > 4096 {
		_, _ = f.Seek(-4096, io.SeekEnd)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}
