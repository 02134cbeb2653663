package soak

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// diskFull brings the gateway's data volume to the edge of full: the data
// dir is a small tmpfs the harness mounts (so only as root), and an episode
// is a ballast file that leaves less free than the buffer's min_free_bytes,
// removed when the episode ends.
type diskFull struct {
	dir     string
	ballast string
}

// mountTmpfs mounts a tmpfs of size bytes on dir.
func mountTmpfs(dir string, size int64) (*diskFull, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("disk-full episodes need root (to mount a small tmpfs as the data dir): skipped")
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("disk-full: %w", err)
	}
	if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, fmt.Sprintf("size=%d,mode=0700", size)); err != nil {
		return nil, fmt.Errorf("disk-full: mount tmpfs on %s: %w", dir, err)
	}
	return &diskFull{dir: dir, ballast: filepath.Join(dir, "soak-ballast")}, nil
}

// fill takes all free space but leave bytes.
func (d *diskFull) fill(leave int64) error {
	var st syscall.Statfs_t
	if err := syscall.Statfs(d.dir, &st); err != nil {
		return fmt.Errorf("disk-full: %w", err)
	}
	n := int64(st.Bavail)*int64(st.Bsize) - leave
	if n <= 0 {
		return nil
	}
	f, err := os.Create(d.ballast)
	if err != nil {
		return fmt.Errorf("disk-full: %w", err)
	}
	defer f.Close()
	// The gateway writes meanwhile: a little less on each ENOSPC.
	for try := 0; ; try++ {
		err := syscall.Fallocate(int(f.Fd()), 0, 0, n)
		if err == nil {
			return nil
		}
		if !errors.Is(err, syscall.ENOSPC) || try == 4 || n <= leave {
			return fmt.Errorf("disk-full: ballast of %d bytes: %w", n, err)
		}
		n -= leave
	}
}

// drain removes the ballast.
func (d *diskFull) drain() error {
	if err := os.Remove(d.ballast); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("disk-full: %w", err)
	}
	return nil
}

// unmount removes the tmpfs (and everything in it).
func (d *diskFull) unmount() error {
	if err := syscall.Unmount(d.dir, syscall.MNT_DETACH); err != nil {
		return fmt.Errorf("disk-full: unmount %s: %w", d.dir, err)
	}
	return nil
}
