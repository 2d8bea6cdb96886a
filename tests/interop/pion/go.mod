// Built in GOPATH mode against Debian's pion packages (see main.go); this file only marks the
// tree as module-aware so that the /v2 and /v3 import paths resolve (Go's minimal module
// compatibility). It lists no requirements on purpose: nothing is fetched from a proxy.
module r58/tests/interop/pion

go 1.19
