package redistest

import "github.com/slotway/slotway/internal/testutil"

// WaitFor is testutil.WaitFor, under the name most tests use.
var WaitFor = testutil.WaitFor
