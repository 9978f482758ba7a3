//go:build !linux

package fsjail

import "io/fs"

func stampOf(fs.FileInfo) (Stamp, bool) { return Stamp{}, false }
