// Package filewatch tells the gateway when the files its configuration was
// made from have changed on disk, so it can reload as on SIGHUP
// (gateway { reload { watch = true } }, docs/hcl.md).
//
// It watches the directories of the files rather than the files, because
// editors and deployment tools rarely write a file in place: vim and most
// IDEs write a new file and rename it over the old one, configuration
// management does the same, and Kubernetes swaps a symlink (..data) in the
// directory of a mounted ConfigMap. A watch on the file itself would follow
// the old inode and miss all of these. Any event in a watched directory
// (re)starts a debounce timer; when the directory has been quiet for the
// debounce time, the files are read and their digests compared with the
// last ones seen, and only a real change is reported. Comparing contents
// rather than event names is what makes symlink swaps, editor backup files
// and unrelated files in the same directory behave: the first are seen,
// the others are ignored.
package filewatch

import (
	"crypto/sha256"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
)

// Watcher reports changes to a set of files on C.
type Watcher struct {
	debounce time.Duration
	log      *slog.Logger
	fsw      *fsnotify.Watcher
	changed  chan []string
	done     chan struct{}
	wg       sync.WaitGroup

	mu sync.Mutex
	// seen maps each watched file to the digest it had when last
	// reported (or when Set first named it).
	seen map[string]digest
	// dirs are the directories watched now.
	dirs map[string]bool
}

// digest is a file's SHA-256, or the zero value for a file that cannot be
// read (missing, a directory, no permission): its appearance is a change.
type digest [sha256.Size]byte

// New starts a watcher that reports once the watched files have changed and
// then stayed unchanged for debounce. It watches nothing until Set.
func New(debounce time.Duration, log *slog.Logger) (*Watcher, error) {
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, err
	}
	w := &Watcher{
		debounce: debounce,
		log:      log,
		fsw:      fsw,
		// One pending report is enough: the gateway reloads everything
		// whatever changed, so reports that pile up while it reloads are
		// one reload's worth.
		changed: make(chan []string, 1),
		done:    make(chan struct{}),
		seen:    map[string]digest{},
		dirs:    map[string]bool{},
	}
	w.wg.Add(1)
	go w.loop()
	return w, nil
}

// C receives the files whose content changed, after the debounce.
func (w *Watcher) C() <-chan []string { return w.changed }

// Set replaces the watched files with paths (absolute). Files already
// watched keep the digest they were last reported with, so an edit made
// while a reload was reading them is still reported; new files are taken as
// they are now.
func (w *Watcher) Set(paths []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	next := map[string]digest{}
	dirs := map[string]bool{}
	for _, p := range paths {
		if d, ok := w.seen[p]; ok {
			next[p] = d
		} else {
			next[p] = fileDigest(p)
		}
		dirs[filepath.Dir(p)] = true
		// A file that is a symlink to another directory changes there:
		// watch that directory too.
		if real, err := filepath.EvalSymlinks(p); err == nil {
			dirs[filepath.Dir(real)] = true
		}
	}
	w.seen = next
	for d := range w.dirs {
		if !dirs[d] {
			_ = w.fsw.Remove(d)
			delete(w.dirs, d)
		}
	}
	for d := range dirs {
		if w.dirs[d] {
			continue
		}
		if err := w.fsw.Add(d); err != nil {
			// A directory that does not exist yet (file() of a path
			// the operator has still to create) is tried again at
			// the next Set.
			w.log.Warn("reload watch: cannot watch directory", "dir", d, "err", err)
			continue
		}
		w.dirs[d] = true
	}
}

// Close stops watching. C is not closed.
func (w *Watcher) Close() error {
	close(w.done)
	err := w.fsw.Close()
	w.wg.Wait()
	return err
}

// loop turns bursts of events into one check after the debounce.
func (w *Watcher) loop() {
	defer w.wg.Done()
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-w.done:
			timer.Stop()
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			// A mode change alone (touch, chmod) changes no content.
			if ev.Op == fsnotify.Chmod {
				continue
			}
			timer.Reset(w.debounce)
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			// An overflow loses events: check the files anyway.
			w.log.Warn("reload watch", "err", err)
			timer.Reset(w.debounce)
		case <-timer.C:
			if changed := w.check(); len(changed) > 0 {
				select {
				case w.changed <- changed:
				default:
				}
			}
		}
	}
}

// check compares every watched file with its last digest and returns the
// changed ones, taking their new digests as the last.
func (w *Watcher) check() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var changed []string
	for p, old := range w.seen {
		if d := fileDigest(p); d != old {
			w.seen[p] = d
			changed = append(changed, p)
		}
	}
	slices.Sort(changed)
	return changed
}

// fileDigest reads p, following symlinks.
func fileDigest(p string) digest {
	f, err := os.Open(p)
	if err != nil {
		return digest{}
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return digest{}
	}
	var d digest
	copy(d[:], h.Sum(nil))
	return d
}
