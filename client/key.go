package client

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/ethereum/go-ethereum/crypto"
)

// DefaultKeyName is the client key file's name in a data directory. It is not
// the serving node's key (go-ethereum keeps that in <datadir>/<name>/nodekey):
// a client with the node's own identity would dial itself.
const DefaultKeyName = "client.key"

// LoadOrCreateKey reads a node key file (hex, as go-ethereum writes it) or,
// when the file does not exist, generates a key and writes it there (mode 0600,
// creating the directory), like go-ethereum does with its node key. The second
// result is true when the key was created.
func LoadOrCreateKey(path string) (*ecdsa.PrivateKey, bool, error) {
	if path == "" {
		return nil, false, errors.New("no key file given")
	}
	key, err := crypto.LoadECDSA(path)
	if err == nil {
		return key, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("invalid key file %s: %w", path, err)
	}
	if key, err = crypto.GenerateKey(); err != nil {
		return nil, false, fmt.Errorf("generate key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, false, fmt.Errorf("create key directory: %w", err)
	}
	if err := crypto.SaveECDSA(path, key); err != nil {
		return nil, false, fmt.Errorf("write key file %s: %w", path, err)
	}
	return key, true, nil
}
