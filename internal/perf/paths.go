package perf

import (
	"fmt"
	"path/filepath"
)

// SweepStorePath is where NewSweepEnv keeps its store of total records in
// dir.
func SweepStorePath(dir string, total int) string {
	return filepath.Join(dir, fmt.Sprintf("sweep-%d.db", total))
}

// SweepCADir is where NewSweepEnv keeps the store's CA (testpki.Save), so
// that the store can be reused, and served, by later runs and processes.
func SweepCADir(dir string) string { return filepath.Join(dir, "sweep-ca") }
