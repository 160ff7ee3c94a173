//go:build !linux

package storage

import (
	"errors"
	"os"
)

const syncfsSupported = false

func syncfs(*os.File) error { return errors.ErrUnsupported }
