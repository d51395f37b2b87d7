package clientpool

import "container/heap"

// clientHeap is an indexed binary heap of clients: each client stores its own
// position (through idx), so removal and re-ordering are O(log n).
type clientHeap struct {
	items []*client
	less  func(a, b *client) bool
	idx   func(c *client) *int
}

func (h *clientHeap) Len() int           { return len(h.items) }
func (h *clientHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *clientHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	*h.idx(h.items[i]) = i
	*h.idx(h.items[j]) = j
}

// Push implements heap.Interface; use add.
func (h *clientHeap) Push(x any) {
	c := x.(*client)
	*h.idx(c) = len(h.items)
	h.items = append(h.items, c)
}

// Pop implements heap.Interface; use remove.
func (h *clientHeap) Pop() any {
	n := len(h.items) - 1
	c := h.items[n]
	h.items[n] = nil
	h.items = h.items[:n]
	*h.idx(c) = -1
	return c
}

func (h *clientHeap) add(c *client) { heap.Push(h, c) }

func (h *clientHeap) contains(c *client) bool {
	i := *h.idx(c)
	return i >= 0 && i < len(h.items) && h.items[i] == c
}

func (h *clientHeap) remove(c *client) {
	if h.contains(c) {
		heap.Remove(h, *h.idx(c))
	}
}

func (h *clientHeap) fix(c *client) {
	if h.contains(c) {
		heap.Fix(h, *h.idx(c))
	}
}

func (h *clientHeap) top() *client {
	if len(h.items) == 0 {
		return nil
	}
	return h.items[0]
}
