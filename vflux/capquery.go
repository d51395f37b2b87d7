package vflux

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"

	"github.com/ethereum/go-ethereum/rlp"
)

// The capacity query is the one request a server answers in bulk, so its
// request is decoded and its reply encoded here by hand rather than through
// the reflection of rlp.DecodeBytes and rlp.EncodeToBytes. Both produce exactly
// what the reflection codec does: the decoder accepts the same encodings and
// yields the same value (FuzzDecodeCapacityQueryReq checks it against
// rlp.DecodeBytes), the encoder writes the same bytes.

var (
	errTooManyElements = errors.New("rlp: input list has too many elements")
	errUint8Overflow   = errors.New("rlp: input string too long for uint8")
)

// wordBytes is the number of bytes in a big.Word.
const wordBytes = bits.UintSize / 8

// DecodeCapacityQueryReq decodes data, the RLP encoding of a CapacityQueryReq,
// into req, overwriting it. It accepts exactly the inputs rlp.DecodeBytes
// accepts for a *CapacityQueryReq and yields the same value, including
// rejecting non-canonical integers and sizes, extra list elements and trailing
// bytes; it does not check the number of amounts (see Validate). On error req
// is not changed.
func DecodeCapacityQueryReq(data []byte, req *CapacityQueryReq) error {
	fields, rest, err := rlp.SplitList(data)
	if err != nil {
		return fmt.Errorf("capacity query: %w", err)
	}
	if len(rest) > 0 {
		return rlp.ErrMoreThanOneValue
	}
	bias, fields, err := rlp.SplitUint64(fields)
	if err != nil {
		return fmt.Errorf("capacity query bias: %w", err)
	}
	amounts, fields, err := rlp.SplitList(fields)
	if err != nil {
		return fmt.Errorf("capacity query amounts: %w", err)
	}
	if len(fields) > 0 {
		return fmt.Errorf("capacity query: %w", errTooManyElements)
	}
	n, err := rlp.CountValues(amounts)
	if err != nil {
		return fmt.Errorf("capacity query amounts: %w", err)
	}
	// One allocation for the amounts and one for the magnitudes that fit in a
	// word (all realistic ones): each such big.Int gets its own word of
	// oneWord as its value, capped so that growing it reallocates.
	tokens := make([]IntOrInf, n)
	oneWord := make([]big.Word, n)
	for i := range tokens {
		if amounts, err = decodeIntOrInf(amounts, &tokens[i], oneWord[i:i+1:i+1]); err != nil {
			return fmt.Errorf("capacity query amount %d: %w", i, err)
		}
	}
	req.Bias, req.AddTokens = bias, tokens
	return nil
}

// decodeIntOrInf decodes the IntOrInf at the start of enc into v and returns
// the bytes after it. A magnitude of up to one word is stored in word.
func decodeIntOrInf(enc []byte, v *IntOrInf, word []big.Word) (rest []byte, err error) {
	fields, rest, err := rlp.SplitList(enc)
	if err != nil {
		return nil, err
	}
	typ, fields, err := rlp.SplitUint64(fields)
	if err != nil {
		return nil, err
	}
	if typ > math.MaxUint8 {
		return nil, errUint8Overflow
	}
	mag, fields, err := rlp.SplitString(fields)
	if err != nil {
		return nil, err
	}
	if len(fields) > 0 {
		return nil, errTooManyElements
	}
	if len(mag) > 0 && mag[0] == 0 {
		return nil, rlp.ErrCanonInt
	}
	v.Type = uint8(typ)
	switch {
	case len(mag) == 0:
		v.Value.SetBits(nil)
	case len(mag) <= wordBytes:
		var w big.Word
		for _, b := range mag {
			w = w<<8 | big.Word(b)
		}
		word[0] = w
		v.Value.SetBits(word)
	default:
		v.Value.SetBytes(mag)
	}
	return rest, nil
}

// EncodeCapacityQueryReply returns the RLP encoding of r, the same bytes as
// rlp.EncodeToBytes(r), in one allocation.
func EncodeCapacityQueryReply(r CapacityQueryReply) []byte {
	size := 0
	for _, c := range r {
		size += rlp.IntSize(c)
	}
	enc := make([]byte, 0, rlp.ListSize(uint64(size)))
	if size < 56 {
		enc = append(enc, 0xC0+byte(size))
	} else {
		n := (bits.Len64(uint64(size)) + 7) / 8
		enc = append(enc, 0xF7+byte(n))
		for i := n - 1; i >= 0; i-- {
			enc = append(enc, byte(size>>(8*i)))
		}
	}
	for _, c := range r {
		enc = rlp.AppendUint64(enc, c)
	}
	return enc
}
