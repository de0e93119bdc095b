module github.com/ferryrun/ferry/guest

go 1.26
