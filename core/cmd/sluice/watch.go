package main

import (
	"log/slog"

	"github.com/sluice-gw/sluice/core/internal/config"
	"github.com/sluice-gw/sluice/core/internal/filewatch"
)

// startWatch starts the file watch of gateway { reload { watch = true } }:
// the returned channel receives the files that changed, debounced, and the
// caller reloads as on SIGHUP. With the watch off, or when it cannot start,
// the watcher is nil and the channel is nil, which a select never receives
// from, so SIGHUP stays the only trigger.
func startWatch(f *config.File, log *slog.Logger) (*filewatch.Watcher, <-chan []string) {
	if !f.Gateway.Reload.Watch {
		return nil, nil
	}
	w, err := filewatch.New(f.Gateway.Reload.Debounce, log)
	if err != nil {
		// Out of inotify instances, typically: serving matters more
		// than reloading by itself, and SIGHUP still works.
		log.Error("reload watch could not start; reload with SIGHUP", "err", err)
		return nil, nil
	}
	sources := f.Sources()
	w.Set(sources)
	log.Info("watching the configuration files", "files", sources, "debounce_ms", f.Gateway.Reload.Debounce.Milliseconds())
	return w, w.C()
}
