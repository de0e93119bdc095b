module example.com/square

go 1.26

require github.com/ferryrun/ferry/guest v0.0.0

replace github.com/ferryrun/ferry/guest => ../../../../guest
