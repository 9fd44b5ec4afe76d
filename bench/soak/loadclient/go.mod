module tether-bench/soak-loadclient

go 1.26.8

require tether-bench/golib v0.0.0

require (
	github.com/gobwas/httphead v0.1.0 // indirect
	github.com/gobwas/ws v1.5.0 // indirect
)

replace tether-bench/golib => ../../golib
