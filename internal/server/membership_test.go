package server

import (
	"errors"
	"strings"
	"testing"

	"github.com/sluice-mq/sluice/internal/cluster"
	"github.com/sluice-mq/sluice/internal/mgmt"
)

func TestRemovalRefusal(t *testing.T) {
	ids := func(v ...cluster.NodeID) []cluster.NodeID { return v }
	for _, tc := range []struct {
		name            string
		voters, running []cluster.NodeID
		id              uint64
		want            string // in the refusal; "" for allowed
	}{
		{"last voter", ids(1), ids(1), 1, "last voter"},
		{"three running, remove one", ids(1, 2, 3), ids(1, 2, 3), 1, ""},
		{"one stopped, remove it", ids(1, 2, 3), ids(1, 2), 3, ""},
		{"one stopped, remove a running one", ids(1, 2, 3), ids(1, 2), 2, "majority (2)"},
		{"two of four stopped, remove a stopped one", ids(1, 2, 3, 4), ids(1, 2), 4, "fewer than a majority (3)"},
		{"one of four stopped, remove it", ids(1, 2, 3, 4), ids(1, 2, 3), 4, ""},
		{"one of four stopped, remove a running one", ids(1, 2, 3, 4), ids(1, 2, 3), 1, ""},
		{"two voters, remove the other", ids(1, 2), ids(1, 2), 2, ""},
		{"two voters, one stopped, remove the running one", ids(1, 2), ids(1), 1, "fewer than a majority (2)"},
		{"three voters, two stopped, remove one", ids(1, 2, 3), ids(1), 2, "fewer than a majority (2)"},
	} {
		err := removalRefusal(tc.voters, tc.running, tc.id)
		var me *mgmt.MembershipError
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: refused: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want a refusal with %q", tc.name, err, tc.want)
		case err != nil && (!errors.As(err, &me) || me.Status != 409):
			t.Errorf("%s: %v is not a 409", tc.name, err)
		}
	}
}
