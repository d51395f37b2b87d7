package vflux

// flowHeap is an indexed binary heap of scheduler nodes. Each heap owns one index
// field of its members (index returns a pointer to it; -1 means "not in this
// heap"), so a member can be fixed or removed in O(log n) wherever it sits.
type flowHeap struct {
	items []*fnode
	less  func(a, b *fnode) bool
	index func(n *fnode) *int
}

func (h *flowHeap) len() int { return len(h.items) }

// top returns the first member, or nil when the heap is empty.
func (h *flowHeap) top() *fnode {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}

func (h *flowHeap) push(n *fnode) {
	*h.index(n) = len(h.items)
	h.items = append(h.items, n)
	h.up(len(h.items) - 1)
}

// remove takes n out of the heap; it does nothing when n is not a member.
func (h *flowHeap) remove(n *fnode) {
	i := *h.index(n)
	if i < 0 {
		return
	}
	last := len(h.items) - 1
	if i != last {
		h.swap(i, last)
	}
	h.items[last] = nil
	h.items = h.items[:last]
	*h.index(n) = -1
	if i != last {
		if !h.down(i) {
			h.up(i)
		}
	}
}

// pop removes and returns the first member, or nil when the heap is empty.
func (h *flowHeap) pop() *fnode {
	n := h.top()
	if n != nil {
		h.remove(n)
	}
	return n
}

// fix restores the heap order after n's key changed.
func (h *flowHeap) fix(n *fnode) {
	i := *h.index(n)
	if i < 0 {
		return
	}
	if !h.down(i) {
		h.up(i)
	}
}

func (h *flowHeap) swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.index(h.items[i]) = i
	*h.index(h.items[j]) = j
}

func (h *flowHeap) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if !h.less(h.items[i], h.items[p]) {
			return
		}
		h.swap(i, p)
		i = p
	}
}

// down sifts the member at i down and reports whether it moved.
func (h *flowHeap) down(i int) bool {
	start := i
	n := len(h.items)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		c := l
		if r := l + 1; r < n && h.less(h.items[r], h.items[l]) {
			c = r
		}
		if !h.less(h.items[c], h.items[i]) {
			break
		}
		h.swap(i, c)
		i = c
	}
	return i > start
}
