package recovery

// SetReadAhead sets how many index entries s reads at once, so that tests
// with a few records exercise reading on from the last entry.
func SetReadAhead(s *Sweeper, n int) { s.readAhead = n }
