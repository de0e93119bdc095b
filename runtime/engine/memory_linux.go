package engine

import "syscall"

// MAP_NORESERVE: do not count the reservation against overcommit limits; a
// guest only ever uses what it touches.
const mapNoReserve = syscall.MAP_NORESERVE
