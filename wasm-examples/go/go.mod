module github.com/ferryrun/ferry/wasm-examples/go

go 1.26

require github.com/ferryrun/ferry/guest v0.0.0

replace github.com/ferryrun/ferry/guest => ../../guest
