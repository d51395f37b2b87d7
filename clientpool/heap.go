package clientpool

// indexedHeap is the one binary min-heap of the package: the active and
// inactive client sets (items *client, each keeping its own position through
// index, so removal and re-ordering are O(log n)) and the enforcement
// frontier (items planEntry by value, no positions kept). less orders the
// items, lowest first.
type indexedHeap[T any] struct {
	items []T
	less  func(a, b *T) bool
	index func(x T) *int // where an item keeps its position; nil: nowhere
}

func (h *indexedHeap[T]) Len() int { return len(h.items) }

func (h *indexedHeap[T]) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	if h.index != nil {
		*h.index(h.items[i]) = i
		*h.index(h.items[j]) = j
	}
}

func (h *indexedHeap[T]) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(&h.items[i], &h.items[parent]) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

// down sifts item i down and reports whether it moved.
func (h *indexedHeap[T]) down(i int) bool {
	start, n := i, len(h.items)
	for {
		l, r, m := 2*i+1, 2*i+2, i
		if l < n && h.less(&h.items[l], &h.items[m]) {
			m = l
		}
		if r < n && h.less(&h.items[r], &h.items[m]) {
			m = r
		}
		if m == i {
			return i > start
		}
		h.swap(i, m)
		i = m
	}
}

// heapify orders items set directly.
func (h *indexedHeap[T]) heapify() {
	for i := len(h.items)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

// push adds x.
func (h *indexedHeap[T]) push(x T) {
	h.items = append(h.items, x)
	i := len(h.items) - 1
	if h.index != nil {
		*h.index(x) = i
	}
	h.up(i)
}

// removeAt removes and returns the item at position i.
func (h *indexedHeap[T]) removeAt(i int) T {
	n := len(h.items) - 1
	if i != n {
		h.swap(i, n)
	}
	x := h.items[n]
	var zero T
	h.items[n] = zero
	h.items = h.items[:n]
	if h.index != nil {
		*h.index(x) = -1
	}
	if i != n && !h.down(i) {
		h.up(i)
	}
	return x
}

// pop removes and returns the lowest item; the heap must not be empty.
func (h *indexedHeap[T]) pop() T { return h.removeAt(0) }

// fixAt restores the order after the item at position i changed.
func (h *indexedHeap[T]) fixAt(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// clientHeap is an indexedHeap of clients.
type clientHeap = indexedHeap[*client]

// newClientHeap returns an empty client heap ordered by less, each client
// keeping its position in the field index returns.
func newClientHeap(less func(a, b *client) bool, index func(c *client) *int) clientHeap {
	return clientHeap{less: func(a, b **client) bool { return less(*a, *b) }, index: index}
}

// contains reports whether x is in the heap (index must be set).
func (h *indexedHeap[T]) contains(x T) bool {
	i := *h.index(x)
	return i >= 0 && i < len(h.items) && h.index(h.items[i]) == h.index(x)
}

// add adds x (an alias of push, for the client sets).
func (h *indexedHeap[T]) add(x T) { h.push(x) }

// remove removes x if it is in the heap (index must be set).
func (h *indexedHeap[T]) remove(x T) {
	if h.contains(x) {
		h.removeAt(*h.index(x))
	}
}

// fix restores the order after x's key changed, if x is in the heap (index
// must be set).
func (h *indexedHeap[T]) fix(x T) {
	if h.contains(x) {
		h.fixAt(*h.index(x))
	}
}

// top returns the lowest item, or the zero value if the heap is empty.
func (h *indexedHeap[T]) top() T {
	if len(h.items) == 0 {
		var zero T
		return zero
	}
	return h.items[0]
}
