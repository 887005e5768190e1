//go:build !(linux || darwin || freebsd || netbsd || openbsd || dragonfly)

package devkafka

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// lockDir marks DataDir as in use by creating its lock file exclusively and
// returns the function that removes it. Without flock a crash leaves the
// file behind; the error says to delete it.
func lockDir(dir string) (func() error, error) {
	path := filepath.Join(dir, lockFileName)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o644)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return nil, fmt.Errorf("dev_kafka: data_dir %s is in use by another dev broker (lock file %s exists); stop that gateway, or delete the file if no gateway is running", dir, path)
		}
		return nil, fmt.Errorf("dev_kafka: cannot create lock file %s: %w; set dev_kafka.data_dir to a writable directory", path, err)
	}
	_, _ = fmt.Fprintf(f, "%d\n", os.Getpid())
	_ = f.Close()
	return func() error {
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("remove lock file %s: %w", path, err)
		}
		return nil
	}, nil
}
