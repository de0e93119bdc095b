//go:build !unix

package main

// lockDir is a no-op where flock is unavailable; the bbolt files still
// refuse a second process.
func lockDir(string) (func(), error) { return func() {}, nil }
