//go:build race

package node_test

// raceEnabled: the test binary was built with -race, which makes every
// memory access several times dearer, the attacker's loops and the
// validator's alike but not in the same measure; timing ratios mean
// little under it.
const raceEnabled = true
