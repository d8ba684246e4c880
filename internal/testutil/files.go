package testutil

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/strata-db/strata/internal/syncmark"
	"github.com/stretchr/testify/require"
)

// NewestWAL returns the path of the newest WAL in the store directory dir.
func NewestWAL(t testing.TB, fs vfs.FS, dir string) string {
	t.Helper()
	names, err := fs.List(dir)
	require.NoError(t, err)
	newest := ""
	for _, name := range names {
		if strings.HasSuffix(name, ".log") && name > newest {
			newest = name
		}
	}
	require.NotEmpty(t, newest, "no WAL in %s", dir)
	return fs.PathJoin(dir, newest)
}

// FlipByte inverts the byte at offset off of path (from the end if off is
// negative) and syncs the file: bit rot in a closed store.
func FlipByte(t testing.TB, fs vfs.FS, path string, off int64) {
	t.Helper()
	f, err := fs.OpenReadWrite(path, vfs.WriteCategoryUnspecified)
	require.NoError(t, err)
	defer f.Close()
	if off < 0 {
		st, err := f.Stat()
		require.NoError(t, err)
		off += st.Size()
	}
	var b [1]byte
	_, err = f.ReadAt(b[:], off)
	require.NoError(t, err)
	b[0] ^= 0xff
	_, err = f.WriteAt(b[:], off)
	require.NoError(t, err)
	require.NoError(t, f.Sync())
}

// ReadSyncMark returns the mark recorded in the sync mark file of the store
// in dir, 0 if it has none.
func ReadSyncMark(t testing.TB, fs vfs.FS, dir string) uint64 {
	t.Helper()
	f, err := fs.Open(fs.PathJoin(dir, syncmark.FileName))
	if errors.Is(err, os.ErrNotExist) {
		return 0
	}
	require.NoError(t, err)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	mark, _, err := syncmark.Decode(b)
	require.NoError(t, err)
	return mark
}
