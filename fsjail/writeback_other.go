//go:build !linux

package fsjail

// StartWriteback does nothing where sync_file_range(2) is missing: the
// fsync at commit writes everything.
func (p *Partial) StartWriteback(off, n int64) {}
