package server

import (
	"fmt"
	"testing"

	"github.com/sluice-mq/sluice/internal/broker"
)

// TestOfflineAccessRoundTrip edits a data directory offline and reads the
// edits back after reopening it, as the CLI's --data-dir commands do one
// command per process.
func TestOfflineAccessRoundTrip(t *testing.T) {
	dir := t.TempDir()
	edit := func(fn func(a *OfflineAccess) error) {
		t.Helper()
		a, err := OpenOfflineAccess(dir)
		if err != nil {
			t.Fatal(err)
		}
		if err := fn(a); err != nil {
			t.Fatal(err)
		}
		if err := a.Close(); err != nil {
			t.Fatal(err)
		}
	}
	edit(func(a *OfflineAccess) error { return a.PutVhost(broker.Vhost{Name: "team", Description: "the team's"}) })
	edit(func(a *OfflineAccess) error {
		return a.PutUser(broker.User{Name: "alice", PasswordHash: "h", Tags: []string{"management"}})
	})
	edit(func(a *OfflineAccess) error {
		return a.SetPermission(broker.Permission{User: "alice", Vhost: "team", Configure: "^alice-", Write: ".*", Read: ".*"})
	})
	edit(func(a *OfflineAccess) error {
		if got := fmt.Sprint(a.Vhosts()); got != "[{team the team's []}]" {
			t.Errorf("Vhosts = %s", got)
		}
		if got := fmt.Sprint(a.Users()); got != "[{alice h [management] []}]" {
			t.Errorf("Users = %s", got)
		}
		if got := fmt.Sprint(a.Permissions()); got != "[{alice team ^alice- .* .*}]" {
			t.Errorf("Permissions = %s", got)
		}
		return nil
	})

	// A permission for a user or vhost that does not exist is refused,
	// as it is online.
	a, err := OpenOfflineAccess(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.SetPermission(broker.Permission{User: "bob", Vhost: "team", Configure: ".*"}); err == nil {
		t.Error("SetPermission for an unknown user succeeded")
	}
	if err := a.DeleteVhost("nowhere"); err == nil {
		t.Error("DeleteVhost of an unknown vhost succeeded")
	}
	if err := a.ClearPermission("alice", "team"); err != nil {
		t.Fatal(err)
	}
	if err := a.DeleteUser("alice"); err != nil {
		t.Fatal(err)
	}
	if len(a.Users()) != 0 || len(a.Permissions()) != 0 {
		t.Errorf("after the deletes: users %v, permissions %v", a.Users(), a.Permissions())
	}
}

// TestOfflineAccessRefusesARunningBroker: the data directory's lock keeps
// an offline edit away from a directory in use.
func TestOfflineAccessRefusesARunningBroker(t *testing.T) {
	dir := t.TempDir()
	a, err := OpenOfflineAccess(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if b, err := OpenOfflineAccess(dir); err == nil {
		b.Close()
		t.Fatal("a second opener of the same data directory was let in")
	}
}
