package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"
)

// gateway is the sluice process under test.
type gateway struct {
	cmd     *exec.Cmd
	listen  string
	admin   string
	kafka   string
	logPath string
	logFile *os.File

	done    chan struct{}
	waitErr error

	stopOnce sync.Once
	stopErr  error
}

// freeAddr returns a loopback address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// gatewayHCL renders the whole configuration file.
func gatewayHCL(listen, admin, pluginDir, kafka, dataDir string, embedded bool, topicNames []string, apis string) string {
	var b strings.Builder
	// Every load generator runs on one address: the per-IP connection limit
	// (1,000 by default) would refuse the fan-out scenarios' streams.
	fmt.Fprintf(&b, "gateway {\n  listen       = %q\n  admin_listen = %q\n  plugin_dir   = %q\n  limits {\n    max_connections        = 50000\n    max_connections_per_ip = 50000\n  }\n}\n", listen, admin, pluginDir)
	if embedded {
		sorted := append([]string(nil), topicNames...)
		sort.Strings(sorted)
		var ts []string
		for _, t := range sorted {
			ts = append(ts, fmt.Sprintf("%q = %d", t, partitions))
		}
		fmt.Fprintf(&b, "\ndev_kafka {\n  listen   = %q\n  data_dir = %q\n  topics   = { %s }\n}\n", kafka, dataDir, strings.Join(ts, ", "))
	}
	b.WriteString(apis)
	return b.String()
}

// startGateway writes the configuration into e.dir, starts sluice and waits
// for /ready. On error the returned gateway, when not nil, has been started
// and must still be stopped; its log explains the failure.
func startGateway(ctx context.Context, e *env) (*gateway, error) {
	bin, err := filepath.Abs(e.opts.binDir)
	if err != nil {
		return nil, err
	}
	exe := filepath.Join(bin, "sluice")
	if _, err := os.Stat(exe); err != nil {
		return nil, fmt.Errorf("no sluice binary in %s: run `make build` first, or pass -bin or -baseline-only (%v)", bin, err)
	}
	listen, err := freeAddr()
	if err != nil {
		return nil, err
	}
	admin, err := freeAddr()
	if err != nil {
		return nil, err
	}
	embedded := e.bootstrap == ""
	if embedded {
		if e.bootstrap, err = freeAddr(); err != nil {
			return nil, err
		}
	}
	text := gatewayHCL(listen, admin, filepath.Join(bin, "plugins"), e.bootstrap, filepath.Join(e.dir, "kafka"), embedded, e.topics.all(), apiHCL(e))
	cfgPath := filepath.Join(e.dir, "gateway.hcl")
	if err := os.WriteFile(cfgPath, []byte(text), 0o644); err != nil {
		return nil, err
	}
	logPath := filepath.Join(e.dir, "gateway.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	g := &gateway{listen: listen, admin: admin, kafka: e.bootstrap, logPath: logPath, logFile: logFile, done: make(chan struct{})}
	g.cmd = exec.Command(exe, "run", cfgPath)
	g.cmd.Dir = e.dir
	g.cmd.Stdout = logFile
	g.cmd.Stderr = logFile
	// Its own process group: a terminal Ctrl-C reaches only the bench, which
	// then stops the gateway in order. Pdeathsig kills it if the bench dies
	// without that chance.
	g.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := g.cmd.Start(); err != nil {
		_ = logFile.Close()
		return nil, fmt.Errorf("start %s: %w", exe, err)
	}
	go func() {
		g.waitErr = g.cmd.Wait()
		close(g.done)
	}()
	e.logf("started %s run %s (pid %d)", exe, cfgPath, g.cmd.Process.Pid)
	if err := g.waitReady(ctx, e.opts.readyTimeout); err != nil {
		return g, err
	}
	return g, nil
}

// waitReady polls the admin /ready endpoint until it answers 200.
func (g *gateway) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: 2 * time.Second}
	last := "no answer"
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+g.admin+"/ready", nil)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		select {
		case <-g.done:
			return fmt.Errorf("gateway exited before it was ready: %v", g.waitErr)
		case <-ctx.Done():
			return fmt.Errorf("gateway not ready after %s (last /ready answer: %s)", timeout, last)
		case <-tick.C:
		}
	}
}

// exitedErr reports why the gateway exited, or nil while it runs.
func (g *gateway) exitedErr() error {
	if g == nil {
		return nil
	}
	select {
	case <-g.done:
		if g.waitErr == nil {
			return errors.New("exit status 0")
		}
		return g.waitErr
	default:
		return nil
	}
}

// stop sends SIGTERM, waits up to 20 s for an orderly exit, then kills.
func (g *gateway) stop() error {
	g.stopOnce.Do(func() {
		defer g.logFile.Close()
		select {
		case <-g.done:
			return
		default:
		}
		_ = g.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-g.done:
		case <-time.After(20 * time.Second):
			g.kill()
			<-g.done
			g.stopErr = errors.New("the gateway did not stop within 20s of SIGTERM; killed it")
		}
	})
	return g.stopErr
}

// kill ends the gateway and its plugins at once (their process group).
func (g *gateway) kill() {
	_ = syscall.Kill(-g.cmd.Process.Pid, syscall.SIGKILL)
}

// tail returns the last lines of the gateway's log.
func (g *gateway) tail(lines int) string {
	data, err := os.ReadFile(g.logPath)
	if err != nil {
		return fmt.Sprintf("(cannot read %s: %v)", g.logPath, err)
	}
	return tailLines(string(data), lines)
}

// tailLines returns the last n lines of s.
func tailLines(s string, n int) string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return "(empty)"
	}
	idx := len(s)
	for i := 0; i < n; i++ {
		j := strings.LastIndexByte(s[:idx], '\n')
		if j < 0 {
			return s
		}
		idx = j
	}
	return s[idx+1:]
}
