package server

import (
	"path/filepath"

	"github.com/sluice-mq/sluice/internal/broker"
	"github.com/sluice-mq/sluice/internal/meta"
)

// metaDir is where a data directory keeps its definitions.
func metaDir(dataDir string) string { return filepath.Join(dataDir, "meta") }

// OfflineAccess edits the users, virtual hosts and permissions in the data
// directory of a stopped broker, as the CLI does with --data-dir (this is
// how a first administrator is made before the broker ever runs). Changes
// go through the metadata log like a running broker's, and are durable
// when a method returns. Open holds the data directory's metadata lock,
// so it fails while a broker runs on the directory; Close releases it.
type OfflineAccess struct {
	m *meta.Store
}

// OpenOfflineAccess opens the definitions in dataDir.
func OpenOfflineAccess(dataDir string) (*OfflineAccess, error) {
	m, err := meta.Open(metaDir(dataDir), meta.Options{})
	if err != nil {
		return nil, err
	}
	return &OfflineAccess{m: m}, nil
}

// Close releases the data directory.
func (a *OfflineAccess) Close() error { return a.m.Close() }

// PutUser creates u or replaces the user of that name.
func (a *OfflineAccess) PutUser(u broker.User) error { return a.m.PutUser(u) }

// DeleteUser deletes a user and its permissions; the user must exist.
func (a *OfflineAccess) DeleteUser(name string) error { return a.m.DeleteUser(name) }

// Users lists the users by name.
func (a *OfflineAccess) Users() []broker.User { return a.m.Users() }

// PutVhost creates v or replaces the vhost definition of that name.
func (a *OfflineAccess) PutVhost(v broker.Vhost) error { return a.m.PutVhost(v) }

// DeleteVhost deletes a vhost with its exchanges, queues, bindings and
// permissions; the vhost must exist.
func (a *OfflineAccess) DeleteVhost(name string) error { return a.m.DeleteVhost(name) }

// Vhosts lists the vhosts by name.
func (a *OfflineAccess) Vhosts() []broker.Vhost { return a.m.Vhosts() }

// SetPermission sets p.User's permission in p.Vhost, replacing any; the
// user and the vhost must exist.
func (a *OfflineAccess) SetPermission(p broker.Permission) error { return a.m.SetPermission(p) }

// ClearPermission removes user's permission in vhost.
func (a *OfflineAccess) ClearPermission(user, vhost string) error {
	return a.m.ClearPermission(user, vhost)
}

// Permissions lists every permission, by user, then vhost.
func (a *OfflineAccess) Permissions() []broker.Permission { return a.m.Permissions() }
