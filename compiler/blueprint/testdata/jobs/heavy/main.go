// Package main is a stand-in job source for the blueprint tests; it is
// never built.
package main

func main() {}
