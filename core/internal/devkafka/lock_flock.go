//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package devkafka

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive, non-blocking flock on DataDir's lock file and
// returns the function that releases it. The OS drops the lock when the
// process dies, so a crash leaves no stale lock behind.
func lockDir(dir string) (func() error, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("dev_kafka: cannot open lock file %s: %w; set dev_kafka.data_dir to a writable directory", path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		_ = f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("dev_kafka: data_dir %s is in use by another running dev broker (lock %s); stop that gateway or set dev_kafka.data_dir to another directory", dir, path)
		}
		return nil, fmt.Errorf("dev_kafka: cannot lock data_dir %s: %w", dir, err)
	}
	_ = f.Truncate(0)
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	return func() error {
		// Closing the descriptor releases the lock.
		if err := f.Close(); err != nil {
			return fmt.Errorf("release lock %s: %w", path, err)
		}
		return nil
	}, nil
}
