// Package params holds the constants and defaults of vflux: protocol names and
// versions, wire limits, pool defaults and the request cost model. It has no
// logic; every other package reads its numbers from here so that an operator or
// a reviewer finds them in one place.
package params
