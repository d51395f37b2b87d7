//go:build race

package node

// raceEnabled tells tests that build programs to build them with -race too,
// so they reuse the packages this test binary was compiled from (a cold CI
// cache then compiles go-ethereum's eth once, not twice).
const raceEnabled = true
