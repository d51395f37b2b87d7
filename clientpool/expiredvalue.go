package clientpool

// ExpiredValue is a decaying amount (SPEC 2.1): value(L) = Base * 2^(Exp - L/2^24).
type ExpiredValue struct {
	Base, Exp uint64
}
