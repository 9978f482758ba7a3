//go:build unix

package fsjail

import (
	"bufio"
	"bytes"
	"io/fs"
	"os"
	"strconv"
	"syscall"
)

// umask is the process's file mode creation mask, read once at start.
var umask = readUmask()

// readUmask reads the umask from /proc where it can (Linux 4.7 and
// later), else by setting and restoring it, which is safe only while no
// other goroutine creates files: during package initialization.
func readUmask() fs.FileMode {
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("Umask:")); ok {
				if m, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 8, 32); err == nil {
					return fs.FileMode(m) & fs.ModePerm
				}
			}
		}
	}
	m := syscall.Umask(0)
	syscall.Umask(m)
	return fs.FileMode(m) & fs.ModePerm
}
